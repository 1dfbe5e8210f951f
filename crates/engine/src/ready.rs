//! The monitor's ready pipe: how a monitor tells the `start`ing CLI that the container was
//! created, started, or refused. One JSON object per line ([`ReadyMessage`]), so a message may
//! carry any text and the CLI rebuilds the precise [`EngineError`] (and so Docker's exit code:
//! 127 command not found, 126 cannot invoke, 125 otherwise) without parsing words.

use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};

use crate::EngineError;

/// Errors of reading the ready pipe.
#[derive(Debug, thiserror::Error)]
pub enum ReadyError {
    /// The pipe could not be read.
    #[error("cannot read the monitor's ready pipe: {0}")]
    Read(#[source] std::io::Error),
    /// A line was not a [`ReadyMessage`] (a monitor of another berth version?).
    #[error("unexpected message from the monitor {line:?}: {source}")]
    Decode {
        /// The line read.
        line: String,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
}

/// One message of the monitor to the starting CLI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ReadyMessage {
    /// The runtime created the container (attach: the attach socket listens now).
    Created,
    /// The container's process runs.
    Started,
    /// The container could not be created or started.
    Failed {
        /// What kind of failure: decides the CLI's exit code and whether `run` removes the
        /// container record.
        kind: FailureKind,
        /// The message, as the user sees it.
        message: String,
    },
}

/// Kinds of start failure the CLI tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The command does not exist (exit 127).
    CommandNotFound,
    /// The command exists but cannot be executed (exit 126).
    CannotInvoke,
    /// A published host port is taken (`run` removes the container it created).
    PortConflict,
    /// Anything else (exit 125).
    Other,
}

impl ReadyMessage {
    /// The message reporting `e`, with its text on one line.
    pub fn failed(e: &EngineError) -> Self {
        let kind = match e {
            EngineError::CommandNotFound(_) => FailureKind::CommandNotFound,
            EngineError::CannotInvoke(_) => FailureKind::CannotInvoke,
            EngineError::PortConflict(_) => FailureKind::PortConflict,
            _ => FailureKind::Other,
        };
        Self::Failed {
            kind,
            message: e.to_string().replace('\n', " "),
        }
    }

    /// Writes the message as one JSON line.
    ///
    /// Errors: the write's.
    pub fn write_to(&self, w: &mut impl Write) -> std::io::Result<()> {
        let mut line = serde_json::to_string(self).map_err(std::io::Error::other)?;
        line.push('\n');
        w.write_all(line.as_bytes())
    }

    /// Reads the next message; `Ok(None)` at end of file (the monitor is gone).
    ///
    /// Errors: [`ReadyError`].
    pub fn read_from(r: &mut impl BufRead) -> Result<Option<Self>, ReadyError> {
        let mut line = String::new();
        if r.read_line(&mut line).map_err(ReadyError::Read)? == 0 {
            return Ok(None);
        }
        serde_json::from_str(line.trim_end())
            .map(Some)
            .map_err(|source| ReadyError::Decode {
                line: line.trim_end().to_string(),
                source,
            })
    }
}

impl FailureKind {
    /// The engine error a CLI reports for a failure of this kind with `message`.
    pub fn into_error(self, message: String) -> EngineError {
        match self {
            Self::CommandNotFound => EngineError::CommandNotFound(message),
            Self::CannotInvoke => EngineError::CannotInvoke(message),
            Self::PortConflict => EngineError::PortConflict(message),
            Self::Other => EngineError::StartFailed(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_as_json_lines() {
        let msgs = [
            ReadyMessage::Created,
            ReadyMessage::Started,
            ReadyMessage::failed(&EngineError::CommandNotFound("exec: \"nope\"\nx".into())),
            ReadyMessage::failed(&EngineError::PortConflict("port 80 error 125 taken".into())),
        ];
        let mut buf = Vec::new();
        for m in &msgs {
            m.write_to(&mut buf).unwrap();
        }
        let text = String::from_utf8(buf.clone()).unwrap();
        assert_eq!(text.lines().count(), msgs.len(), "one line each: {text}");
        assert!(text.starts_with("{\"event\":\"created\"}\n"), "{text}");
        let mut r = std::io::Cursor::new(buf);
        for m in &msgs {
            assert_eq!(ReadyMessage::read_from(&mut r).unwrap().as_ref(), Some(m));
        }
        assert!(
            ReadyMessage::read_from(&mut r).unwrap().is_none(),
            "end of file"
        );
    }

    #[test]
    fn failures_keep_their_kind_and_exit_code() {
        let cases = [
            (EngineError::CommandNotFound("a".into()), 127),
            (EngineError::CannotInvoke("b".into()), 126),
            (EngineError::PortConflict("c".into()), 125),
            (EngineError::NotRunning("d".into()), 125),
        ];
        for (e, code) in cases {
            let ReadyMessage::Failed { kind, message } = ReadyMessage::failed(&e) else {
                panic!("not a failure");
            };
            assert_eq!(message, e.to_string());
            let back = kind.into_error(message);
            assert_eq!(back.exit_code(), code);
            assert_eq!(back.to_string(), e.to_string());
            assert_eq!(
                matches!(back, EngineError::PortConflict(_)),
                matches!(e, EngineError::PortConflict(_))
            );
        }
    }

    #[test]
    fn a_line_of_the_old_text_protocol_is_a_decode_error() {
        let mut r = std::io::Cursor::new(b"error 125 boom\n".to_vec());
        let e = ReadyMessage::read_from(&mut r).unwrap_err();
        assert!(matches!(e, ReadyError::Decode { .. }), "{e}");
    }
}
