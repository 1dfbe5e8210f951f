//! `ps`: the container table, Docker's columns.

use clap::Args;

use berth_engine::status::{human_duration, status_line};
use berth_engine::{Engine, Status};

use crate::CmdResult;

/// Flags of `ps`.
#[derive(Debug, Args)]
pub struct PsArgs {
    /// Show all containers (default: running only).
    #[arg(short = 'a', long)]
    all: bool,
    /// Only ids.
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Do not truncate ids and commands.
    #[arg(long)]
    no_trunc: bool,
}

pub fn ps(mut engine: Engine, a: PsArgs) -> CmdResult {
    engine.reconcile_all()?;
    let now = chrono::Utc::now();
    let mut rows = Vec::new();
    let mut list = engine.containers()?;
    list.reverse(); // newest first, as Docker
    for c in list {
        let running = matches!(c.state.status, Status::Running | Status::Restarting);
        if !a.all && !running {
            continue;
        }
        let id = if a.no_trunc {
            c.id.clone()
        } else {
            c.short_id().to_string()
        };
        if a.quiet {
            println!("{id}");
            continue;
        }
        let image_cfg = engine
            .image_config(&c.image_id)
            .ok()
            .and_then(|i| i.config().clone())
            .unwrap_or_default();
        let command = berth_engine::bundle::merge_process(&image_cfg, &c.config)
            .map(|p| p.args.join(" "))
            .unwrap_or_default();
        let command = if a.no_trunc || command.chars().count() <= 20 {
            format!("\"{command}\"")
        } else {
            format!("\"{}…\"", command.chars().take(19).collect::<String>())
        };
        rows.push([
            id,
            c.config.image.clone(),
            command,
            format!("{} ago", human_duration(now - c.created)),
            status_line(&c.state, now),
            engine.ports_column(&c),
            c.name.to_string(),
        ]);
    }
    if a.quiet {
        return Ok(0);
    }
    let head = [
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS",
        "NAMES",
    ];
    print_table(&head, &rows);
    Ok(0)
}

/// Prints columns padded to their widest cell, three spaces apart (Docker's tabwriter look).
pub fn print_table<const N: usize>(head: &[&str; N], rows: &[[String; N]]) {
    print!("{}", render_table(head, rows));
}

/// The table [`print_table`] prints, one `\n`-terminated line per row. Cells may be of any
/// width (padding is pushed by hand: `format!`'s width argument stops at 65535).
pub fn render_table<const N: usize>(head: &[&str; N], rows: &[[String; N]]) -> String {
    let mut w: Vec<usize> = head.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, cell) in r.iter().enumerate() {
            w[i] = w[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            s.push_str(c);
            if i + 1 < N {
                let pad = w[i] - c.chars().count() + 3;
                s.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(s.trim_end());
        out.push('\n');
    };
    line(head.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_pads_columns_and_takes_cells_wider_than_u16() {
        let rows = [
            ["a".to_string(), "x".repeat(70_000), "n1".to_string()],
            ["bbb".to_string(), "y".to_string(), "n2".to_string()],
        ];
        let t = render_table(&["ID", "PORTS", "NAMES"], &rows);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines[0],
            format!("ID    PORTS{}NAMES", " ".repeat(70_000 - 5 + 3))
        );
        assert_eq!(lines[1], format!("a     {}   n1", "x".repeat(70_000)));
        assert_eq!(lines[2], format!("bbb   y{}n2", " ".repeat(70_000 - 1 + 3)));
    }
}
