//! Containers that share another's network namespace (`--net container:TARGET`).
//!
//! When the target stops (or restarts), Docker leaves a joined container running in the old
//! namespace and removes the target's interfaces from it (libnetwork's sandbox delete makes
//! every endpoint leave), so the namespace keeps only `lo`. berth does the same (issue 11,
//! item 7): its teardown normally lets the veths die with the namespace, but a namespace
//! another container still uses does not die, and the target's old veth would keep its IP and
//! MAC on the bridge next to the restarted target's new one. So a target with live joined
//! containers has its links deleted explicitly.

use berth_net::NetworkMode;

use crate::reconcile::pid_alive;
use crate::state::{Container, Status, COLUMNS};
use crate::{Engine, EngineError};

impl Engine {
    /// The running containers whose `--net container:` target is container `id` (name, id or
    /// id prefix as the user gave it). One query over the records that join some container;
    /// usually none.
    pub fn joined_running(&self, id: &str) -> Result<Vec<Container>, EngineError> {
        let Some(target) = crate::state::by_id(self.store.conn(), id)? else {
            return Ok(Vec::new());
        };
        let mut stmt = self.store.conn().prepare_cached(&format!(
            "SELECT {COLUMNS} FROM containers WHERE instr(config, '\"network\":\"container:') > 0"
        ))?;
        let rows = stmt.query_map([], crate::state::row_to_container)?;
        let mut out = Vec::new();
        for c in rows {
            let c = c?;
            let NetworkMode::Container(t) = &c.config.network else {
                continue;
            };
            let names_target = t == target.name.as_str() || target.id.starts_with(t.as_str());
            if names_target && c.state.status == Status::Running && pid_alive(c.state.pid) {
                out.push(c);
            }
        }
        Ok(out)
    }
}
