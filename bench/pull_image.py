#!/usr/bin/python3
"""Builds the image of the pull figure as an OCI image layout (ref `latest`), one gzip layer
(level 6, like docker/skopeo) per host directory given, so its content is real binaries and
text rather than random bytes (which would not compress).

Usage: pull_image.py OUTDIR DIR...   (prints per layer: dir, tar bytes, gzip bytes)
"""
import gzip, hashlib, io, json, os, sys, tarfile
out = sys.argv[1]
dirs = sys.argv[2:]
os.makedirs(out + "/blobs/sha256", exist_ok=True)
def put(data):
    d = hashlib.sha256(data).hexdigest()
    open(f"{out}/blobs/sha256/{d}", "wb").write(data)
    return "sha256:" + d, len(data)
layers, diffs = [], []
for d in dirs:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as t:
        t.add(d, arcname=d.lstrip("/"))
    rawb = raw.getvalue()
    diffs.append("sha256:" + hashlib.sha256(rawb).hexdigest())
    gz = gzip.compress(rawb, compresslevel=6, mtime=0)
    dg, size = put(gz)
    layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": dg, "size": size})
    print(d, len(rawb), size, file=sys.stderr)
cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]},
                  "rootfs": {"type": "layers", "diff_ids": diffs}}).encode()
cd, cs = put(cfg)
man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                  "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
                  "layers": layers}).encode()
md, ms = put(man)
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms,
           "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}, open(out + "/index.json", "w"))
open(out + "/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
