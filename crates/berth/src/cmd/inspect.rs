//! `inspect`: containers (or images) as a JSON array in Docker's shape.

use clap::Args;

use berth_engine::Engine;

use crate::CmdResult;

/// Flags of `inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Containers (or images, when no container has the name).
    #[arg(required = true)]
    names: Vec<String>,
}

pub fn inspect(mut engine: Engine, a: InspectArgs) -> CmdResult {
    let mut docs = Vec::new();
    let mut code = 0;
    for n in &a.names {
        match engine.container(n) {
            Ok(c) => {
                let c = engine.reconcile_one(c)?;
                docs.push(engine.inspect(&c));
            }
            Err(e) => match engine.images.inspect(&engine.store, n) {
                Ok(img) => docs.push(serde_json::to_value(img)?),
                Err(_) => {
                    eprintln!("berth: {e}");
                    code = 1;
                }
            },
        }
    }
    println!("{}", serde_json::to_string_pretty(&docs)?);
    Ok(code)
}
