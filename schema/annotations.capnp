# distsoc wire schema — annotations that state the protocol's limits as data.
#
# Every size limit of the wire format is written once, here in the schema, as
# an annotation on the field (or message-code constant) it limits. The prose
# comment next to each field says the same for human readers; the annotation
# is what tools read. `schema/codegen.rs` extracts them from the compiled
# schema into `schema/generated/limits.json` (language-neutral, for other
# implementations) and `schema/generated/limits.rs` (the Rust tables
# `distsoc_schema::limits::{FIELD_LIMITS, MESSAGE_CODES}`). A value outside a
# limit is refused with the error named in the annotation's comment, on that
# stream, while the connection stays usable (schema/README.md §2, §10).
#
# Annotations do not change the encoding: a schema with or without them
# produces the same bytes.

@0xac71ccb57e59209c;

# ---------------------------------------------------------------------------
# Field limits. Each applies to the field it annotates, wherever the enclosing
# struct appears (a top-level message, a nested struct, or canonical bytes).

annotation maxBytes(field) :UInt64;
# Largest length of a `Data` or `Text` field, in bytes (for `Text`, the UTF-8
# bytes without the NUL terminator). A longer value is refused with
# `tooLarge`.

annotation exactBytes(field) :UInt64;
# The one length a `Data` field may have when present, in bytes (ids, keys,
# signatures, nonces). Any other length is refused with `malformed`.

annotation maxItems(field) :UInt64;
# Most elements of a `List` field. A longer list is refused with `tooLarge`.

annotation maxItemBytes(field) :UInt64;
# Largest length of each element of a `List(Text)` or `List(Data)` field, in
# bytes. A longer element is refused with `tooLarge`.

# ---------------------------------------------------------------------------
# The message-code table. Each `code*` constant of wire.capnp (the 1-byte
# message code of a frame, schema/README.md §2) carries its kind, its cap and,
# for requests, the code that answers it. The message's name is the constant's
# name without the `code` prefix; its root struct has the same name unless
# `root` says otherwise.

enum MessageKind {
  # What role a message plays on its stream (schema/README.md §2).

  request @0;
  # Opens a bidirectional stream; answered on it by its `response` code or by
  # Error.

  response @1;
  # Answers a request (or a push sent on a bidirectional stream) on the same
  # stream.

  push @2;
  # One-way information; answered by Ack or Error only when sent on a
  # bidirectional stream.
}

annotation kind(const) :MessageKind;
# Whether the code's message is a request, a response or a push.

annotation response(const) :UInt8;
# For a request: the message code of its success response.

annotation frameCap(const) :UInt32;
# Largest framed message accepted for this code, in bytes: the Cap'n Proto
# stream encoding (segment table + segments), excluding the 1-byte code.
# Checked from the segment table before the body is read; more is `tooLarge`.

annotation root(const) :Text;
# The root struct of the message when its name differs from the message's
# name (e.g. FetchWaitResponse is a FetchResponse).
