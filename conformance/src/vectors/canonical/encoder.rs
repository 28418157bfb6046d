//! The small Cap'n Proto encoder: JSON form → object tree → canonical words,
//! with [`Knobs`] to break one canonicalization rule at a time.

use std::fmt::Debug;

use serde_json::Value;

use super::layout::{layout, F, L};

// ---------------------------------------------------------------------------
// JSON form -> object tree -> canonical words.

/// A Cap'n Proto object, before layout.
#[derive(Clone, Debug)]
pub(super) enum Obj {
    /// The null pointer.
    Null,
    /// A struct.
    Struct(St),
    /// A byte list (`Data`, or `Text` with its NUL).
    Bytes(Vec<u8>),
    /// A list of pointers (`List(Data)`).
    Ptrs(Vec<Obj>),
    /// A list of structs (inline composite).
    Structs(Vec<St>),
}

/// A struct's sections at their schema size (truncated when encoded).
#[derive(Clone, Debug)]
pub(super) struct St {
    pub(super) data: Vec<u8>,
    pub(super) ptrs: Vec<Obj>,
}

pub(super) fn unhex(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().expect("hex string")).expect("hex")
}

pub(super) fn tree(l: &L, v: &Value) -> St {
    let mut st = St {
        data: vec![0; l.data * 8],
        ptrs: vec![Obj::Null; l.ptrs],
    };
    set_fields(&mut st, l.fields, v);
    st
}

pub(super) fn set_fields(st: &mut St, fields: &[(&str, F)], v: &Value) {
    for (key, value) in v.as_object().expect("a JSON object") {
        let (_, f) = fields
            .iter()
            .find(|(name, _)| name == key)
            .unwrap_or_else(|| panic!("unknown field {key}"));
        set(st, *f, value);
    }
}

pub(super) fn put_u(st: &mut St, at: usize, value: u64, len: usize) {
    assert!(len == 8 || value < 1 << (8 * len), "{value} does not fit");
    st.data[at..at + len].copy_from_slice(&value.to_le_bytes()[..len]);
}

pub(super) fn num(v: &Value) -> u64 {
    v.as_u64().expect("a JSON number")
}

pub(super) fn set(st: &mut St, f: F, v: &Value) {
    match f {
        F::U16(at) => put_u(st, at, num(v), 2),
        F::U32(at) => put_u(st, at, num(v), 4),
        F::U64(at) => put_u(st, at, num(v), 8),
        F::Bool(bit) => {
            if v.as_bool().expect("a JSON boolean") {
                st.data[bit / 8] |= 1 << (bit % 8);
            }
        }
        F::Enum(at, names) => {
            let name = v.as_str().expect("an enumerant name");
            let index = names
                .iter()
                .position(|n| *n == name)
                .unwrap_or_else(|| panic!("unknown enumerant {name}"));
            put_u(st, at, index as u64, 2);
        }
        F::Data(p) => st.ptrs[p] = Obj::Bytes(unhex(v)),
        F::Text(p) => {
            let mut b = v.as_str().expect("a JSON string").as_bytes().to_vec();
            b.push(0);
            st.ptrs[p] = Obj::Bytes(b);
        }
        F::Struct(p, l) => st.ptrs[p] = obj_of(l, v),
        F::Structs(p, l) => {
            let items = v.as_array().expect("a JSON array");
            st.ptrs[p] = Obj::Structs(items.iter().map(|i| tree(l, i)).collect());
        }
        F::DataList(p) => {
            let items = v.as_array().expect("a JSON array");
            st.ptrs[p] = Obj::Ptrs(items.iter().map(|i| Obj::Bytes(unhex(i))).collect());
        }
        F::TextList(p) => {
            let items = v.as_array().expect("a JSON array");
            st.ptrs[p] = Obj::Ptrs(
                items
                    .iter()
                    .map(|i| {
                        let mut b = i.as_str().expect("a JSON string").as_bytes().to_vec();
                        b.push(0);
                        Obj::Bytes(b)
                    })
                    .collect(),
            );
        }
        F::Group(fields) => set_fields(st, fields, v),
        F::ArmVoid(at, d) => {
            assert!(v.is_null(), "a Void arm's value is null");
            put_u(st, at, u64::from(d), 2);
        }
        F::ArmStruct(at, d, p, l) => {
            put_u(st, at, u64::from(d), 2);
            st.ptrs[p] = obj_of(l, v);
        }
    }
}

/// A struct value; JSON `null` is the null pointer.
pub(super) fn obj_of(l: &L, v: &Value) -> Obj {
    if v.is_null() {
        Obj::Null
    } else {
        Obj::Struct(tree(l, v))
    }
}

/// Rules of the canonical form that can be broken on purpose (all off = the
/// canonical encoding).
#[derive(Clone, Copy, Default)]
pub(super) struct Knobs {
    /// Zero words kept after the root struct's truncated data section.
    pub(super) root_extra_data: usize,
    /// Null pointers kept after the root struct's truncated pointer section.
    pub(super) root_extra_ptrs: usize,
    /// Lay out the root's children last pointer first (not pre-order).
    pub(super) root_reverse: bool,
    /// Minimum element size (data words, pointers) of struct lists.
    pub(super) list_size: Option<(usize, usize)>,
}

/// Struct pointer (or list tag: `offset` = element count).
pub(super) fn sp(offset: i64, data: usize, ptrs: usize) -> u64 {
    u64::from((offset as u32) << 2) | ((data as u64) << 32) | ((ptrs as u64) << 48)
}

/// List pointer: element size tag (2 byte, 6 pointer, 7 inline composite).
pub(super) fn lp(offset: i64, size: u8, count: usize) -> u64 {
    (u64::from((offset as u32) << 2) | 1) | (u64::from(size) << 32) | ((count as u64) << 35)
}

/// Far pointer: landing pad position, segment id.
pub(super) fn fp(pad: usize, segment: u32) -> u64 {
    ((pad as u64) << 3) | 2 | (u64::from(segment) << 32)
}

pub(super) fn data_words(st: &St) -> usize {
    st.data
        .chunks(8)
        .rposition(|w| w.iter().any(|b| *b != 0))
        .map_or(0, |i| i + 1)
}

pub(super) fn ptr_count(st: &St) -> usize {
    st.ptrs
        .iter()
        .rposition(|o| !matches!(o, Obj::Null))
        .map_or(0, |i| i + 1)
}

pub(super) fn off(target: usize, at: usize) -> i64 {
    target as i64 - at as i64 - 1
}

/// The canonical encoder: one segment, root pointer first, objects allocated
/// in pre-order as they are reached, sections truncated.
pub(super) struct Enc {
    pub(super) w: Vec<u64>,
    pub(super) k: Knobs,
}

impl Enc {
    fn alloc(&mut self, n: usize) -> usize {
        let start = self.w.len();
        self.w.resize(start + n, 0);
        start
    }

    fn put(&mut self, at: usize, o: &Obj, root: bool) {
        match o {
            Obj::Null => self.w[at] = 0,
            Obj::Struct(st) => {
                let (mut d, mut p, mut reverse) = (data_words(st), ptr_count(st), false);
                if root {
                    d += self.k.root_extra_data;
                    p += self.k.root_extra_ptrs;
                    reverse = self.k.root_reverse;
                }
                if d == 0 && p == 0 {
                    // A zero-sized struct points just before itself.
                    self.w[at] = sp(-1, 0, 0);
                    return;
                }
                let s = self.alloc(d + p);
                self.w[at] = sp(off(s, at), d, p);
                self.data(s, st, d);
                self.ptrs(s + d, st, p, reverse);
            }
            Obj::Bytes(b) => {
                let s = self.alloc(b.len().div_ceil(8));
                self.w[at] = lp(off(s, at), 2, b.len());
                for (i, chunk) in b.chunks(8).enumerate() {
                    let mut word = [0u8; 8];
                    word[..chunk.len()].copy_from_slice(chunk);
                    self.w[s + i] = u64::from_le_bytes(word);
                }
            }
            Obj::Ptrs(items) => {
                let s = self.alloc(items.len());
                self.w[at] = lp(off(s, at), 6, items.len());
                for (i, item) in items.iter().enumerate() {
                    self.put(s + i, item, false);
                }
            }
            Obj::Structs(items) => {
                // Every element has the size of the largest truncated element.
                let mut d = items.iter().map(data_words).max().unwrap_or(0);
                let mut p = items.iter().map(ptr_count).max().unwrap_or(0);
                if let Some((kd, kp)) = self.k.list_size {
                    (d, p) = (d.max(kd), p.max(kp));
                }
                let n = items.len();
                let s = self.alloc(1 + n * (d + p));
                self.w[at] = lp(off(s, at), 7, n * (d + p));
                self.w[s] = sp(n as i64, d, p);
                for (i, item) in items.iter().enumerate() {
                    self.data(s + 1 + i * (d + p), item, d);
                }
                for (i, item) in items.iter().enumerate() {
                    self.ptrs(s + 1 + i * (d + p) + d, item, p, false);
                }
            }
        }
    }

    fn data(&mut self, at: usize, st: &St, d: usize) {
        for i in 0..d {
            let mut word = [0u8; 8];
            if let Some(bytes) = st.data.get(i * 8..i * 8 + 8) {
                word.copy_from_slice(bytes);
            }
            self.w[at + i] = u64::from_le_bytes(word);
        }
    }

    fn ptrs(&mut self, at: usize, st: &St, p: usize, reverse: bool) {
        let order: Vec<usize> = if reverse {
            (0..p).rev().collect()
        } else {
            (0..p).collect()
        };
        for j in order {
            match st.ptrs.get(j) {
                Some(o) => self.put(at + j, o, false),
                None => self.w[at + j] = 0,
            }
        }
    }
}

pub(super) fn words_to_bytes(words: &[u64]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

pub(super) fn encode_obj(root: &Obj, k: Knobs) -> Vec<u8> {
    let mut e = Enc { w: vec![0], k };
    e.put(0, root, true);
    words_to_bytes(&e.w)
}

/// Encodes `value` (JSON form) of schema struct `ty`, with `k`'s rules broken.
pub(super) fn encode_with(ty: &str, value: &Value, k: Knobs) -> Vec<u8> {
    encode_obj(&obj_of(layout(ty), value), k)
}

/// The canonical bytes of `value` (JSON form) of schema struct `ty`.
pub(super) fn encode(ty: &str, value: &Value) -> Vec<u8> {
    encode_with(ty, value, Knobs::default())
}
