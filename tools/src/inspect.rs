//! `distsoc inspect`: decode one framed message and show what a receiver sees.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;
use distsoc_protocol::codes::MessageCode;
use distsoc_protocol::error::{ErrorCode, WireCode};
use distsoc_protocol::frame::decode_frame;
use distsoc_protocol::messages::Message;

/// Arguments of `inspect`.
#[derive(Debug, Args)]
pub(crate) struct InspectArgs {
    /// The frame as hex (whitespace ignored).
    #[arg(long, conflicts_with = "file")]
    hex: Option<String>,
    /// A file holding the raw frame bytes.
    #[arg(long)]
    file: Option<PathBuf>,
}

/// What a receiver concludes about some bytes.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// A valid message.
    Message {
        code: MessageCode,
        segments: usize,
        words: usize,
        message: Box<Message>,
    },
    /// Rejected with this wire error.
    Rejected { code: ErrorCode, reason: String },
}

/// Decodes `bytes` exactly as a receiving stream would.
pub(crate) fn inspect_bytes(bytes: &[u8]) -> Verdict {
    let frame = match decode_frame(bytes) {
        Ok(f) => f,
        Err(e) => {
            return Verdict::Rejected {
                code: e.error_code(),
                reason: e.to_string(),
            }
        }
    };
    match Message::from_frame(&frame) {
        Ok(m) => Verdict::Message {
            code: frame.code(),
            segments: frame.segment_count(),
            words: frame.words(),
            message: Box::new(m),
        },
        Err(e) => Verdict::Rejected {
            code: e.error_code(),
            reason: e.to_string(),
        },
    }
}

pub(crate) fn run(args: InspectArgs) -> anyhow::Result<()> {
    let bytes = match (args.hex, args.file) {
        (Some(h), None) => {
            let clean: String = h.chars().filter(|c| !c.is_whitespace()).collect();
            hex::decode(clean).context("--hex is not valid hex")?
        }
        (None, Some(f)) => {
            std::fs::read(&f).with_context(|| format!("cannot read {}", f.display()))?
        }
        _ => bail!("give the frame with --hex HEX or --file PATH"),
    };
    println!("{} bytes", bytes.len());
    match inspect_bytes(&bytes) {
        Verdict::Message {
            code,
            segments,
            words,
            message,
        } => {
            println!(
                "code      0x{:02x} {} ({})",
                code.as_u8(),
                code.name(),
                code.kind().name()
            );
            println!("framing   {segments} segment(s), {words} words");
            println!("verdict   VALID (version {})", message.version());
            println!("{message:#?}");
        }
        Verdict::Rejected { code, reason } => {
            println!("verdict   REJECTED: the receiver answers Error({code})");
            println!("reason    {reason}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use distsoc_protocol::messages::wire::Ack;

    #[test]
    fn valid_and_rejected_frames() {
        let frame = Message::Ack(Ack {
            version: 2,
            request_code: 0x50,
        })
        .to_frame()
        .unwrap();
        match inspect_bytes(&frame) {
            Verdict::Message { code, .. } => assert_eq!(code, MessageCode::Ack),
            v => panic!("{v:?}"),
        }
        match inspect_bytes(&[0x99, 0, 0, 0, 0]) {
            Verdict::Rejected { code, .. } => assert_eq!(code, ErrorCode::UnknownMessage),
            v => panic!("{v:?}"),
        }
        let mut trailing = frame.clone();
        trailing.push(0);
        match inspect_bytes(&trailing) {
            Verdict::Rejected { code, .. } => assert_eq!(code, ErrorCode::Malformed),
            v => panic!("{v:?}"),
        }
        let mut v3 = Message::Ack(Ack {
            version: 3,
            request_code: 0x50,
        })
        .to_frame()
        .unwrap();
        match inspect_bytes(&v3) {
            Verdict::Rejected { code, .. } => assert_eq!(code, ErrorCode::UnsupportedVersion),
            v => panic!("{v:?}"),
        }
        v3.truncate(5);
        assert!(matches!(
            inspect_bytes(&v3),
            Verdict::Rejected {
                code: ErrorCode::Malformed,
                ..
            }
        ));
    }
}
