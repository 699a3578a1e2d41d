//! The scheduler's global data decoded on the host: each variable of its
//! `.bss`, `.data` and `.rodata` maps named and rendered through the BTF
//! the guest sent with them (`btf-rs`). Every size and offset is checked
//! against the bytes received; nested values are bounded in depth and
//! length.

use std::collections::BTreeMap;

use btf_rs::{Btf, Type};
use ktstr_plan::results::{BpfDump, BpfGlobal, BpfGlobals};

use super::btf_layout;

/// How deep structs and arrays are rendered.
const MAX_DEPTH: usize = 3;
/// How many elements of an array, or members of a struct, are shown.
const MAX_ITEMS: usize = 16;

fn unhex(s: &str) -> Option<Vec<u8>> {
    hex::decode(s).ok()
}

fn int_at(bytes: &[u8], size: usize, signed: bool) -> Option<i128> {
    let b = bytes.get(..size)?;
    let mut v: u128 = 0;
    for (i, byte) in b.iter().enumerate() {
        v |= u128::from(*byte) << (8 * i);
    }
    Some(if signed && size < 16 && b[size - 1] & 0x80 != 0 {
        (v as i128) - (1i128 << (8 * size))
    } else {
        v as i128
    })
}

/// `t` rendered from `bytes`, and as a number when it is an integer.
fn render(btf: &Btf, t: Type, bytes: &[u8], depth: usize) -> (String, Option<f64>) {
    let t = match btf_layout::strip_type(btf, t) {
        Ok(t) => t,
        Err(e) => return (format!("({e})"), None),
    };
    match t {
        Type::Int(i) if i.is_bool() => match bytes.first() {
            Some(b) => ((*b != 0).to_string(), Some(f64::from(*b))),
            None => ("(short)".into(), None),
        },
        Type::Int(i) => match int_at(bytes, i.size(), i.is_signed()) {
            Some(v) => (v.to_string(), Some(v as f64)),
            None => ("(short)".into(), None),
        },
        Type::Enum(e) => match int_at(bytes, e.size(), e.is_signed()) {
            Some(v) => (v.to_string(), Some(v as f64)),
            None => ("(short)".into(), None),
        },
        Type::Ptr(_) => match int_at(bytes, 8, false) {
            Some(v) => (format!("{v:#x}"), None),
            None => ("(short)".into(), None),
        },
        Type::Array(a) => (render_array(btf, &a, bytes, depth), None),
        Type::Struct(s) | Type::Union(s) => (render_struct(btf, &s, bytes, depth), None),
        other => (format!("({})", other.name()), None),
    }
}

fn render_array(btf: &Btf, a: &btf_rs::Array, bytes: &[u8], depth: usize) -> String {
    let Ok(elem) = btf.resolve_chained_type(a) else {
        return "(array of a dangling type)".into();
    };
    let elem = match btf_layout::strip_type(btf, elem) {
        Ok(t) => t,
        Err(e) => return format!("({e})"),
    };
    let size = btf_layout::size_of_type(btf, &elem).unwrap_or(0) as usize;
    if let Type::Int(i) = &elem {
        if i.is_char() || (size == 1 && btf.resolve_name(i).is_ok_and(|n| n == "char")) {
            let b = &bytes[..bytes.len().min(a.len())];
            let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
            return format!("{:?}", String::from_utf8_lossy(&b[..end]));
        }
    }
    if size == 0 || depth >= MAX_DEPTH {
        return format!("[{} elements]", a.len());
    }
    let shown: Vec<String> = (0..a.len().min(MAX_ITEMS))
        .map_while(|k| bytes.get(k * size..(k + 1) * size))
        .map(|b| render(btf, elem.clone(), b, depth + 1).0)
        .collect();
    if a.len() > shown.len() {
        format!("[{}, ... ({} elements)]", shown.join(", "), a.len())
    } else {
        format!("[{}]", shown.join(", "))
    }
}

fn render_struct(btf: &Btf, s: &btf_rs::Struct, bytes: &[u8], depth: usize) -> String {
    if depth >= MAX_DEPTH {
        return "{...}".into();
    }
    let mut parts = Vec::new();
    for m in s.members.iter().take(MAX_ITEMS) {
        let name = btf.resolve_name(m).unwrap_or_default();
        let off = (m.bit_offset() / 8) as usize;
        let Some(field) = bytes.get(off..) else { break };
        let value = match btf.resolve_chained_type(m) {
            Ok(t) => render(btf, t, field, depth + 1).0,
            Err(_) => "(dangling)".into(),
        };
        parts.push(format!("{name}: {value}"));
    }
    if s.members.len() > MAX_ITEMS {
        parts.push("...".into());
    }
    format!("{{{}}}", parts.join(", "))
}

/// Decodes `dump`: every variable of every map it could, and why not
/// where it could not.
pub fn decode(dump: &BpfDump) -> BpfGlobals {
    let mut out = BpfGlobals {
        when: dump.when.clone(),
        ..BpfGlobals::default()
    };
    let mut parsed: BTreeMap<u32, Result<Btf, String>> = BTreeMap::new();
    for map in &dump.maps {
        let btf = parsed.entry(map.btf_id).or_insert_with(|| {
            let hex = &dump
                .btfs
                .iter()
                .find(|b| b.id == map.btf_id)
                .ok_or_else(|| format!("BTF {} was not sent", map.btf_id))?
                .hex;
            let raw = unhex(hex).ok_or("the BTF is not hex")?;
            btf_layout::parse(&raw).map_err(|e| e.to_string())
        });
        let btf = match btf {
            Ok(b) => b,
            Err(e) => {
                out.errors.push(format!("{}: {e}", map.name));
                continue;
            }
        };
        let Some(value) = unhex(&map.value_hex) else {
            out.errors
                .push(format!("{}: the value is not hex", map.name));
            continue;
        };
        let section = match btf.resolve_type_by_id(map.value_type_id) {
            Ok(Type::Datasec(d)) => d,
            _ => {
                out.errors.push(format!(
                    "{}: its value type is not a data section",
                    map.name
                ));
                continue;
            }
        };
        for v in &section.variables {
            let Ok(Type::Var(var)) = btf.resolve_chained_type(v) else {
                continue;
            };
            let name = btf.resolve_name(&var).unwrap_or_default();
            let start = v.offset() as usize;
            let Some(bytes) = value.get(start..start.saturating_add(v.size()).min(value.len()))
            else {
                continue;
            };
            let (text, number) = match btf.resolve_chained_type(&var) {
                Ok(t) => render(btf, t, bytes, 0),
                Err(_) => ("(dangling)".into(), None),
            };
            out.globals.push(BpfGlobal {
                map: map.name.clone(),
                name,
                value: text,
                number,
            });
        }
    }
    out
}
