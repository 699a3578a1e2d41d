//! Field offsets from the kernel's BTF (`btf-rs`): `struct rq`'s
//! `scx.local_dsq.nr` is a path of member names, resolved through
//! typedefs, qualifiers and anonymous structs and unions. Every walk is
//! bounded, so a corrupt or cyclic BTF gives an error, never a hang.

use btf_rs::{Btf, Struct, Type};

use super::IntrospectError;

/// The deepest chain of typedefs and qualifiers, or nesting of anonymous
/// members, followed before the BTF is declared corrupt.
const MAX_DEPTH: usize = 32;

/// A field's place in its outermost struct.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    /// Byte offset from the start of the struct.
    pub offset: u64,
    /// Size in bytes (integers, pointers, arrays).
    pub size: u64,
}

fn btf_err(what: impl std::fmt::Display) -> IntrospectError {
    IntrospectError::Btf(what.to_string())
}

/// Parses raw `.BTF` bytes. btf-rs assumes well-formed input in places;
/// a panic on corrupt bytes becomes an error here.
pub fn parse(bytes: &[u8]) -> Result<Btf, IntrospectError> {
    std::panic::catch_unwind(|| Btf::from_bytes(bytes))
        .map_err(|_| btf_err("the BTF is corrupt (its parser gave up)"))?
        .map_err(|e| btf_err(format!("the BTF is corrupt: {e}")))
}

/// The struct named `name` (a definition with members, not a forward
/// declaration).
pub fn struct_named(btf: &Btf, name: &str) -> Result<Struct, IntrospectError> {
    let types = btf
        .resolve_types_by_name(name)
        .map_err(|_| btf_err(format!("no type `{name}`")))?;
    types
        .into_iter()
        .find_map(|t| match t {
            Type::Struct(s) if !s.members.is_empty() => Some(s),
            _ => None,
        })
        .ok_or_else(|| btf_err(format!("no struct `{name}` with members")))
}

/// Follows typedefs, const, volatile and restrict to the type they name.
pub fn strip_type(btf: &Btf, t: Type) -> Result<Type, IntrospectError> {
    strip(btf, t)
}

/// The size in bytes of a stripped type with a size.
pub fn size_of_type(btf: &Btf, t: &Type) -> Result<u64, IntrospectError> {
    size_of(btf, t, 0)
}

fn strip(btf: &Btf, mut t: Type) -> Result<Type, IntrospectError> {
    for _ in 0..MAX_DEPTH {
        let next = match &t {
            Type::Typedef(x) => btf.resolve_chained_type(x),
            Type::Const(x) => btf.resolve_chained_type(x),
            Type::Volatile(x) => btf.resolve_chained_type(x),
            Type::Restrict(x) => btf.resolve_chained_type(x),
            Type::TypeTag(x) => btf.resolve_chained_type(x),
            _ => return Ok(t),
        };
        t = next.map_err(|e| btf_err(format!("a dangling type reference: {e}")))?;
    }
    Err(btf_err(
        "a typedef or qualifier chain longer than 32 (a cycle?)",
    ))
}

/// The size in bytes of a (stripped) type the monitor reads.
fn size_of(btf: &Btf, t: &Type, depth: usize) -> Result<u64, IntrospectError> {
    if depth > MAX_DEPTH {
        return Err(btf_err("array nesting deeper than 32"));
    }
    Ok(match t {
        Type::Int(i) => i.size() as u64,
        Type::Ptr(_) => 8,
        Type::Enum(e) => e.size() as u64,
        Type::Struct(s) | Type::Union(s) => s.size() as u64,
        Type::Array(a) => {
            let elem = btf
                .resolve_chained_type(a)
                .map_err(|e| btf_err(format!("an array of a dangling type: {e}")))?;
            let elem = strip(btf, elem)?;
            size_of(btf, &elem, depth + 1)?.saturating_mul(a.len() as u64)
        }
        other => {
            return Err(btf_err(format!(
                "a field of kind {} has no size",
                other.name()
            )))
        }
    })
}

/// Finds member `name` in `s`, looking into anonymous structs and unions;
/// its byte offset within `s` and its (stripped) type.
fn find_member(
    btf: &Btf,
    s: &Struct,
    name: &str,
    depth: usize,
) -> Result<Option<(u64, Type)>, IntrospectError> {
    if depth > MAX_DEPTH {
        return Err(btf_err(
            "anonymous members nested deeper than 32 (a cycle?)",
        ));
    }
    for m in &s.members {
        let offset = u64::from(m.bit_offset() / 8);
        let member_name = btf.resolve_name(m).unwrap_or_default();
        let t = btf
            .resolve_chained_type(m)
            .map_err(|e| btf_err(format!("member `{member_name}`: {e}")))?;
        let t = strip(btf, t)?;
        if member_name == name {
            return Ok(Some((offset, t)));
        }
        if member_name.is_empty() {
            if let Type::Struct(inner) | Type::Union(inner) = &t {
                if let Some((o, t)) = find_member(btf, inner, name, depth + 1)? {
                    return Ok(Some((offset + o, t)));
                }
            }
        }
    }
    Ok(None)
}

/// The offset and size of `path` (`"scx.local_dsq.nr"`) in struct
/// `root`.
pub fn field(btf: &Btf, root: &str, path: &str) -> Result<Field, IntrospectError> {
    let mut s = struct_named(btf, root)?;
    let mut offset = 0u64;
    let parts: Vec<&str> = path.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        let (o, t) = find_member(btf, &s, part, 0)?
            .ok_or_else(|| btf_err(format!("struct {root} has no field `{path}`")))?;
        offset += o;
        if i + 1 == parts.len() {
            return Ok(Field {
                offset,
                size: size_of(btf, &t, 0)?,
            });
        }
        s = match t {
            Type::Struct(inner) | Type::Union(inner) => inner,
            _ => {
                return Err(btf_err(format!(
                    "`{root}.{path}`: `{part}` is not a struct"
                )))
            }
        };
    }
    Err(btf_err(format!("an empty field path in struct {root}")))
}
