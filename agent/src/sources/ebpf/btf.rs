//! Member offsets of kernel structs, read from the kernel's BTF (`/sys/kernel/btf/vmlinux`).
//!
//! Rust eBPF programs cannot carry CO-RE relocations, so a program that follows kernel pointers
//! gets the offsets it needs as load-time globals computed here. Only what that needs is parsed:
//! struct and union members (through anonymous members) and the kinds' record sizes to walk the
//! type section.

use std::path::{Path, PathBuf};

/// Where the kernel exposes its own BTF.
pub const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";

const MAGIC: u16 = 0xeb9f;
const KIND_INT: u32 = 1;
const KIND_PTR: u32 = 2;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_ENUM: u32 = 6;
const KIND_TYPEDEF: u32 = 8;
const KIND_VOLATILE: u32 = 9;
const KIND_CONST: u32 = 10;
const KIND_RESTRICT: u32 = 11;
const KIND_FUNC_PROTO: u32 = 13;
const KIND_VAR: u32 = 14;
const KIND_DATASEC: u32 = 15;
const KIND_DECL_TAG: u32 = 17;
const KIND_TYPE_TAG: u32 = 18;
const KIND_ENUM64: u32 = 19;

#[derive(Debug, thiserror::Error)]
pub enum BtfError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("BTF: {0}")]
    Malformed(&'static str),
    #[error("BTF has no struct `{0}`")]
    NoStruct(String),
    #[error("BTF struct `{strukt}` has no member `{member}`")]
    NoMember { strukt: String, member: String },
    #[error("BTF member `{strukt}.{member}` is a bitfield")]
    Bitfield { strukt: String, member: String },
}

#[derive(Clone, Copy, Debug)]
struct Member {
    name_off: u32,
    type_id: u32,
    /// Bit offset (without the bitfield size when the struct has `kind_flag`).
    bit_offset: u32,
    bitfield: bool,
}

#[derive(Clone, Debug)]
struct Type {
    name_off: u32,
    kind: u32,
    /// `size_or_type`: size for structs, the referenced type for modifiers and pointers.
    size_or_type: u32,
    members: Vec<Member>,
}

/// The parsed type section of one BTF blob.
pub struct Btf {
    types: Vec<Type>,
    strings: Vec<u8>,
}

impl Btf {
    /// The running kernel's BTF.
    pub fn vmlinux() -> Result<Self, BtfError> {
        Self::read(Path::new(VMLINUX_BTF))
    }

    pub fn read(path: &Path) -> Result<Self, BtfError> {
        let data = std::fs::read(path).map_err(|source| BtfError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&data)
    }

    /// Parses a little- or big-endian BTF blob (the magic tells).
    pub fn parse(data: &[u8]) -> Result<Self, BtfError> {
        let little = match data.get(0..2) {
            Some([0x9f, 0xeb]) => true,
            Some([0xeb, 0x9f]) => false,
            _ => return Err(BtfError::Malformed("bad magic")),
        };
        debug_assert_eq!(MAGIC, 0xeb9f);
        let u32_at = |at: usize| -> Result<u32, BtfError> {
            let b: [u8; 4] = data
                .get(at..at + 4)
                .and_then(|s| s.try_into().ok())
                .ok_or(BtfError::Malformed("truncated"))?;
            Ok(if little {
                u32::from_le_bytes(b)
            } else {
                u32::from_be_bytes(b)
            })
        };
        let hdr_len = u32_at(4)? as usize;
        let type_off = u32_at(8)? as usize;
        let type_len = u32_at(12)? as usize;
        let str_off = u32_at(16)? as usize;
        let str_len = u32_at(20)? as usize;
        let types_start = hdr_len + type_off;
        let types_end = types_start + type_len;
        let strings = data
            .get(hdr_len + str_off..hdr_len + str_off + str_len)
            .ok_or(BtfError::Malformed("string section out of bounds"))?
            .to_vec();
        // Type id 0 is `void`.
        let mut types = vec![Type {
            name_off: 0,
            kind: 0,
            size_or_type: 0,
            members: Vec::new(),
        }];
        let mut at = types_start;
        while at < types_end {
            let name_off = u32_at(at)?;
            let info = u32_at(at + 4)?;
            let size_or_type = u32_at(at + 8)?;
            at += 12;
            let vlen = (info & 0xffff) as usize;
            let kind = (info >> 24) & 0x1f;
            let kind_flag = info >> 31 == 1;
            let mut members = Vec::new();
            match kind {
                KIND_INT | KIND_VAR | KIND_DECL_TAG => at += 4,
                KIND_ARRAY => at += 12,
                KIND_STRUCT | KIND_UNION => {
                    for _ in 0..vlen {
                        let offset = u32_at(at + 8)?;
                        members.push(Member {
                            name_off: u32_at(at)?,
                            type_id: u32_at(at + 4)?,
                            bit_offset: if kind_flag {
                                offset & 0x00ff_ffff
                            } else {
                                offset
                            },
                            bitfield: kind_flag && offset >> 24 != 0,
                        });
                        at += 12;
                    }
                }
                KIND_ENUM | KIND_FUNC_PROTO => at += 8 * vlen,
                KIND_DATASEC | KIND_ENUM64 => at += 12 * vlen,
                0..=19 => {}
                _ => return Err(BtfError::Malformed("unknown type kind")),
            }
            types.push(Type {
                name_off,
                kind,
                size_or_type,
                members,
            });
        }
        Ok(Self { types, strings })
    }

    fn name(&self, off: u32) -> &[u8] {
        let rest = self.strings.get(off as usize..).unwrap_or(&[]);
        let end = rest.iter().position(|b| *b == 0).unwrap_or(rest.len());
        &rest[..end]
    }

    /// The type behind typedefs and qualifiers.
    fn resolve(&self, mut id: u32) -> Option<&Type> {
        for _ in 0..32 {
            let t = self.types.get(id as usize)?;
            match t.kind {
                KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG => {
                    id = t.size_or_type;
                }
                _ => return Some(t),
            }
        }
        None
    }

    /// Byte offset of `path` (member names, each in the struct or union the previous one names;
    /// anonymous members are looked through) in struct `strukt`.
    pub fn member_offset(&self, strukt: &str, path: &[&str]) -> Result<u32, BtfError> {
        let mut current = self
            .types
            .iter()
            .find(|t| t.kind == KIND_STRUCT && self.name(t.name_off) == strukt.as_bytes())
            .ok_or_else(|| BtfError::NoStruct(strukt.to_owned()))?;
        let mut total_bits = 0u32;
        for (i, member) in path.iter().enumerate() {
            let (bits, m) =
                self.find_member(current, member, 0)
                    .ok_or_else(|| BtfError::NoMember {
                        strukt: strukt.to_owned(),
                        member: path[..=i].join("."),
                    })?;
            if m.bitfield || bits % 8 != 0 {
                return Err(BtfError::Bitfield {
                    strukt: strukt.to_owned(),
                    member: path[..=i].join("."),
                });
            }
            total_bits += bits;
            if i + 1 < path.len() {
                current = self
                    .resolve(m.type_id)
                    .filter(|t| t.kind == KIND_STRUCT || t.kind == KIND_UNION)
                    .ok_or_else(|| BtfError::NoMember {
                        strukt: strukt.to_owned(),
                        member: path[..=i + 1].join("."),
                    })?;
            }
        }
        Ok(total_bits / 8)
    }

    /// (bit offset from `t`'s start, member) of the member called `name`, searching anonymous
    /// members depth-first.
    fn find_member(&self, t: &Type, name: &str, depth: u32) -> Option<(u32, Member)> {
        if depth > 8 {
            return None;
        }
        for m in &t.members {
            if m.name_off != 0 && self.name(m.name_off) == name.as_bytes() {
                return Some((m.bit_offset, *m));
            }
        }
        for m in t.members.iter().filter(|m| m.name_off == 0) {
            if let Some(inner) = self.resolve(m.type_id)
                && (inner.kind == KIND_STRUCT || inner.kind == KIND_UNION)
                && let Some((bits, found)) = self.find_member(inner, name, depth + 1)
            {
                return Some((m.bit_offset + bits, found));
            }
        }
        None
    }

    /// True when `strukt.member` is a pointer (checks the offsets are used as the program
    /// expects).
    pub fn member_is_pointer(&self, strukt: &str, member: &str) -> bool {
        self.types
            .iter()
            .filter(|t| t.kind == KIND_STRUCT && self.name(t.name_off) == strukt.as_bytes())
            .find_map(|t| self.find_member(t, member, 0))
            .and_then(|(_, m)| self.resolve(m.type_id))
            .is_some_and(|t| t.kind == KIND_PTR)
    }
}

/// Offsets a program needs to read a socket's cgroup v2 id:
/// `sk->sk_cgrp_data.cgroup->kn->id`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SocketCgroupOffsets {
    /// `struct sock` → `sk_cgrp_data.cgroup` (a `struct cgroup *`).
    pub sock_cgroup: u32,
    /// `struct cgroup` → `kn` (a `struct kernfs_node *`).
    pub cgroup_kn: u32,
    /// `struct kernfs_node` → `id` (`u64`).
    pub kernfs_node_id: u32,
}

impl SocketCgroupOffsets {
    pub fn from_btf(btf: &Btf) -> Result<Self, BtfError> {
        let offsets = Self {
            sock_cgroup: btf.member_offset("sock", &["sk_cgrp_data", "cgroup"])?,
            cgroup_kn: btf.member_offset("cgroup", &["kn"])?,
            kernfs_node_id: btf.member_offset("kernfs_node", &["id"])?,
        };
        if !btf.member_is_pointer("cgroup", "kn") {
            return Err(BtfError::Malformed("cgroup.kn is not a pointer"));
        }
        Ok(offsets)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    /// A hand-built little-endian blob: `struct inner { int a; int b; }` and
    /// `struct outer { long x; union { int y; struct inner in; }; }`.
    fn blob() -> Vec<u8> {
        let strings = b"\0int\0inner\0a\0b\0outer\0x\0y\0in\0".to_vec();
        let s = |name: &str| -> u32 {
            let needle = format!("\0{name}\0");
            strings
                .windows(needle.len())
                .position(|w| w == needle.as_bytes())
                .unwrap() as u32
                + 1
        };
        let mut types: Vec<u32> = Vec::new();
        // 1: int (4 bytes)
        types.extend([s("int"), KIND_INT << 24, 4, 32]);
        // 2: struct inner
        types.extend([s("inner"), (KIND_STRUCT << 24) | 2, 8]);
        types.extend([s("a"), 1, 0, s("b"), 1, 32]);
        // 3: anonymous union { int y; struct inner in; }
        types.extend([0, (KIND_UNION << 24) | 2, 8]);
        types.extend([s("y"), 1, 0, s("in"), 2, 0]);
        // 4: struct outer { int x; (pad) union @64 }
        types.extend([s("outer"), (KIND_STRUCT << 24) | 2, 16]);
        types.extend([s("x"), 1, 0, 0, 3, 64]);
        let type_bytes: Vec<u8> = types.iter().flat_map(|v| v.to_le_bytes()).collect();
        let mut out = Vec::new();
        out.extend(0xeb9fu16.to_le_bytes());
        out.extend([1u8, 0]);
        for v in [24u32, 0, type_bytes.len() as u32, type_bytes.len() as u32] {
            out.extend(v.to_le_bytes());
        }
        out.extend((strings.len() as u32).to_le_bytes());
        out.extend(type_bytes);
        out.extend(strings);
        out
    }

    #[test]
    fn offsets_follow_paths_through_anonymous_members() {
        let btf = Btf::parse(&blob()).unwrap();
        assert_eq!(btf.member_offset("outer", &["x"]).unwrap(), 0);
        assert_eq!(btf.member_offset("outer", &["y"]).unwrap(), 8);
        assert_eq!(btf.member_offset("outer", &["in", "b"]).unwrap(), 12);
        assert!(matches!(
            btf.member_offset("outer", &["z"]),
            Err(BtfError::NoMember { .. })
        ));
        assert!(matches!(
            btf.member_offset("nope", &["x"]),
            Err(BtfError::NoStruct(_))
        ));
    }

    #[test]
    fn the_running_kernel_has_the_socket_cgroup_path() {
        if !Path::new(VMLINUX_BTF).exists() {
            eprintln!("skipped: {VMLINUX_BTF} absent");
            return;
        }
        let offsets = SocketCgroupOffsets::from_btf(&Btf::vmlinux().unwrap()).unwrap();
        assert!(
            offsets.sock_cgroup > 0 && offsets.cgroup_kn > 0,
            "{offsets:?}"
        );
    }
}
