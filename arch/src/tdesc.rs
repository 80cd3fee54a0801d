//! The gdb target description (`target.xml`) for amd64-linux with AVX.
//!
//! The document is a single self-contained XML file (no `xi:include`) with
//! the five features GNU gdbserver uses for this target
//! (`org.gnu.gdb.i386.core`, `.sse`, `.linux`, `.segments`, `.avx`). Its
//! registers are generated from [`crate::regs::REGS`], each with an explicit
//! `regnum`, so the register numbering gdb derives from it is exactly the one
//! [`crate::regs`] implements.
//!
//! The SSE `vec128` union leaves out the `v8_bfloat16` and `v8_half` views of
//! recent gdb versions: their element types (`bfloat16`, `ieee_half`) are
//! unknown to older gdb releases, which would reject the whole description.

use std::fmt::Write as _;
use std::sync::OnceLock;

use crate::regs::{Feature, REGS};

/// Type definitions of `org.gnu.gdb.i386.core`.
const CORE_TYPES: &str = r#"<flags id="i386_eflags" size="4"><field name="CF" start="0" end="0"/><field name="" start="1" end="1"/><field name="PF" start="2" end="2"/><field name="AF" start="4" end="4"/><field name="ZF" start="6" end="6"/><field name="SF" start="7" end="7"/><field name="TF" start="8" end="8"/><field name="IF" start="9" end="9"/><field name="DF" start="10" end="10"/><field name="OF" start="11" end="11"/><field name="NT" start="14" end="14"/><field name="RF" start="16" end="16"/><field name="VM" start="17" end="17"/><field name="AC" start="18" end="18"/><field name="VIF" start="19" end="19"/><field name="VIP" start="20" end="20"/><field name="ID" start="21" end="21"/></flags>"#;

/// Type definitions of `org.gnu.gdb.i386.sse`.
const SSE_TYPES: &str = r#"<vector id="v4f" type="ieee_single" count="4"/><vector id="v2d" type="ieee_double" count="2"/><vector id="v16i8" type="int8" count="16"/><vector id="v8i16" type="int16" count="8"/><vector id="v4i32" type="int32" count="4"/><vector id="v2i64" type="int64" count="2"/><union id="vec128"><field name="v4_float" type="v4f"/><field name="v2_double" type="v2d"/><field name="v16_int8" type="v16i8"/><field name="v8_int16" type="v8i16"/><field name="v4_int32" type="v4i32"/><field name="v2_int64" type="v2i64"/><field name="uint128" type="uint128"/></union><flags id="i386_mxcsr" size="4"><field name="IE" start="0" end="0"/><field name="DE" start="1" end="1"/><field name="ZE" start="2" end="2"/><field name="OE" start="3" end="3"/><field name="UE" start="4" end="4"/><field name="PE" start="5" end="5"/><field name="DAZ" start="6" end="6"/><field name="IM" start="7" end="7"/><field name="DM" start="8" end="8"/><field name="ZM" start="9" end="9"/><field name="OM" start="10" end="10"/><field name="UM" start="11" end="11"/><field name="PM" start="12" end="12"/><field name="FZ" start="15" end="15"/></flags>"#;

fn feature_types(feature: Feature) -> &'static str {
    match feature {
        Feature::Core => CORE_TYPES,
        Feature::Sse => SSE_TYPES,
        Feature::Linux | Feature::Segments | Feature::Avx => "",
    }
}

/// Builds the target description document from the register table.
fn build_target_xml() -> String {
    let mut xml = String::with_capacity(8192);
    xml.push_str(concat!(
        r#"<?xml version="1.0"?>"#,
        r#"<!DOCTYPE target SYSTEM "gdb-target.dtd">"#,
        "<target>",
        "<architecture>i386:x86-64</architecture>",
        "<osabi>GNU/Linux</osabi>",
    ));
    for feature in Feature::ALL {
        // Writing into a String cannot fail.
        let _ = write!(xml, r#"<feature name="{}">"#, feature.name());
        xml.push_str(feature_types(feature));
        for (regnum, reg) in REGS.iter().enumerate() {
            if reg.feature != feature {
                continue;
            }
            let _ = write!(
                xml,
                r#"<reg name="{}" bitsize="{}" type="{}" regnum="{}""#,
                reg.name, reg.bitsize, reg.gdb_type, regnum
            );
            if let Some(group) = reg.group {
                let _ = write!(xml, r#" group="{group}""#);
            }
            xml.push_str("/>");
        }
        xml.push_str("</feature>");
    }
    xml.push_str("</target>");
    xml
}

/// The complete `target.xml` document (built once, then cached).
pub fn target_xml() -> &'static str {
    static XML: OnceLock<String> = OnceLock::new();
    XML.get_or_init(build_target_xml)
}

/// The document to serve for a `qXfer:features:read` annex: `target.xml`
/// only, as the description is self-contained; `None` for anything else.
pub fn xfer_annex(annex: &str) -> Option<&'static str> {
    (annex == "target.xml").then(target_xml)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::regs::NUM_REGS;

    /// Value of attribute `name` inside one tag's text.
    fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
        let pat = format!(" {name}=\"");
        let start = tag.find(&pat)? + pat.len();
        let len = tag[start..].find('"')?;
        Some(&tag[start..start + len])
    }

    /// All tags of the document, without the angle brackets.
    fn tags(xml: &str) -> Vec<&str> {
        let mut out = Vec::new();
        let mut rest = xml;
        while let Some(open) = rest.find('<') {
            let close = rest[open..].find('>').expect("unterminated tag") + open;
            out.push(&rest[open + 1..close]);
            rest = &rest[close + 1..];
        }
        out
    }

    #[test]
    fn well_formed() {
        let xml = target_xml();
        assert!(xml.starts_with(r#"<?xml version="1.0"?><!DOCTYPE target SYSTEM "gdb-target.dtd"><target>"#));
        assert!(xml.contains("<architecture>i386:x86-64</architecture>"));
        assert!(xml.contains("<osabi>GNU/Linux</osabi>"));
        assert!(!xml.contains("xi:include"));
        assert!(xml.ends_with("</target>"));
        let mut stack: Vec<&str> = Vec::new();
        for tag in tags(xml) {
            if tag.starts_with('?') || tag.starts_with('!') {
                continue;
            }
            assert_eq!(tag.matches('"').count() % 2, 0, "{tag}");
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(stack.pop(), Some(name), "mismatched </{name}>");
            } else if !tag.ends_with('/') {
                let name = tag.split_whitespace().next().expect("empty tag");
                stack.push(name);
            }
        }
        assert!(stack.is_empty(), "unclosed: {stack:?}");
        assert_eq!(xml.matches("<feature ").count(), 5);
        assert_eq!(xml.matches("</feature>").count(), 5);
        for f in Feature::ALL {
            assert!(xml.contains(&format!(r#"<feature name="{}">"#, f.name())));
        }
    }

    #[test]
    fn registers_match_table() {
        let xml = target_xml();
        assert_eq!(xml.matches("<reg ").count(), NUM_REGS);
        let regs: Vec<&str> = tags(xml).into_iter().filter(|t| t.starts_with("reg ")).collect();
        assert_eq!(regs.len(), NUM_REGS);
        for (i, (tag, info)) in regs.iter().zip(REGS.iter()).enumerate() {
            assert_eq!(attr(tag, "name"), Some(info.name));
            assert_eq!(attr(tag, "regnum"), Some(i.to_string().as_str()));
            assert_eq!(attr(tag, "bitsize"), Some(info.bitsize.to_string().as_str()));
            assert_eq!(attr(tag, "type"), Some(info.gdb_type));
            assert_eq!(attr(tag, "group"), info.group);
        }
        // Registers appear inside the right features, in order.
        let mut feature = "";
        let mut idx = 0;
        for tag in tags(xml) {
            if tag.starts_with("feature ") {
                feature = attr(tag, "name").unwrap_or("");
            } else if tag.starts_with("reg ") {
                assert_eq!(feature, REGS[idx].feature.name(), "{}", REGS[idx].name);
                idx += 1;
            }
        }
        assert_eq!(idx, NUM_REGS);
    }

    #[test]
    fn types_defined() {
        let xml = target_xml();
        for id in ["i386_eflags", "vec128", "i386_mxcsr", "v4f", "v2d", "v16i8", "v8i16", "v4i32", "v2i64"] {
            assert!(xml.contains(&format!(r#"id="{id}""#)), "{id}");
        }
        // Types must be defined before the registers that use them.
        let first_reg = xml.find("<reg ").unwrap_or(0);
        assert!(xml.find(r#"id="i386_eflags""#).unwrap_or(usize::MAX) < first_reg);
    }

    #[test]
    fn annex() {
        assert_eq!(xfer_annex("target.xml"), Some(target_xml()));
        assert_eq!(xfer_annex("64bit-core.xml"), None);
        assert_eq!(xfer_annex(""), None);
        // Cached: same allocation every time.
        assert!(std::ptr::eq(target_xml(), target_xml()));
    }
}
