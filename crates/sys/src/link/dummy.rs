//! Dummy links (`ip link add NAME type dummy`), parents for tests and host_access shims.

use netlink_packet_route::link::{InfoKind, LinkAttribute, LinkInfo, LinkMessage};

use super::{by_name, create_kind, LinkError, DUMMY};

fn new_dummy_msg(name: &str) -> LinkMessage {
    let mut msg = by_name(name);
    msg.attributes
        .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
            InfoKind::Dummy,
        )]));
    msg
}

/// Creates the dummy link `name`, down (`ip link add NAME type dummy`).
///
/// Errors: [`LinkError::KindUnsupported`] (no `CONFIG_DUMMY`), [`LinkError::Netlink`].
pub fn create_dummy(name: &str) -> Result<(), LinkError> {
    create_kind(new_dummy_msg(name), name, "", DUMMY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dummy_request_has_kind_dummy() {
        assert_eq!(
            new_dummy_msg("d0").attributes[1],
            LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Dummy)])
        );
    }
}
