//! tracefs: where it is (mounting it when absent) and what a tracepoint's record looks like.
//!
//! Rust eBPF programs cannot carry CO-RE relocations, so the layout of a tracepoint record is
//! read from its `format` file at load time and handed to the program as globals.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::EbpfError;

/// Where tracefs lives on current kernels, and where the agent mounts it when absent.
pub const TRACEFS: &str = "/sys/kernel/tracing";
/// Where older systems only have it (under debugfs).
const TRACEFS_UNDER_DEBUGFS: &str = "/sys/kernel/debug/tracing";

/// Returns the tracefs mount point, mounting tracefs at [`TRACEFS`] when neither location has
/// it. Needs CAP_SYS_ADMIN to mount.
pub fn ensure_tracefs() -> Result<PathBuf, EbpfError> {
    for dir in [TRACEFS, TRACEFS_UNDER_DEBUGFS] {
        if Path::new(dir).join("events").is_dir() {
            return Ok(PathBuf::from(dir));
        }
    }
    tracing::info!(path = TRACEFS, "tracefs not mounted, mounting it");
    super::privileges::mount_pseudo_fs("tracefs", Path::new(TRACEFS))?;
    Ok(PathBuf::from(TRACEFS))
}

/// One field of a tracepoint record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    /// Byte offset from the start of the record (the program's context).
    pub offset: u32,
    /// Size in bytes.
    pub size: u32,
    pub signed: bool,
}

/// A parsed `events/<category>/<name>/format` file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TracepointFormat {
    pub fields: BTreeMap<String, Field>,
    /// The `print fmt:` line, verbatim (without the prefix).
    pub print_fmt: String,
}

impl TracepointFormat {
    /// Reads `<tracefs>/events/<category>/<name>/format`.
    pub fn read(tracefs: &Path, category: &str, name: &str) -> Result<Self, EbpfError> {
        let path = tracefs
            .join("events")
            .join(category)
            .join(name)
            .join("format");
        let text = std::fs::read_to_string(&path).map_err(|source| EbpfError::Io {
            path: path.clone(),
            source,
        })?;
        Self::parse(&text, &path)
    }

    /// Parses the text of a `format` file; `path` only names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, EbpfError> {
        let mut fields = BTreeMap::new();
        let mut print_fmt = None;
        for (index, line) in text.lines().enumerate() {
            let line_no = index + 1;
            let line = line.trim();
            if let Some(rest) = line.strip_prefix("print fmt:") {
                print_fmt = Some(rest.trim().to_owned());
                continue;
            }
            let Some(rest) = line.strip_prefix("field:") else {
                continue;
            };
            let (name, field) = parse_field(rest).ok_or_else(|| EbpfError::TracefsFormat {
                path: path.to_path_buf(),
                line: line_no,
                expected: "`field:<decl>;\toffset:<n>;\tsize:<n>;\tsigned:<0|1>;`",
            })?;
            fields.insert(name, field);
        }
        let print_fmt = print_fmt.ok_or_else(|| EbpfError::TracefsFormat {
            path: path.to_path_buf(),
            line: text.lines().count(),
            expected: "a `print fmt:` line",
        })?;
        Ok(Self { fields, print_fmt })
    }

    /// A field by name, or an error naming the file and the field.
    pub fn field(&self, name: &'static str, path: &Path) -> Result<Field, EbpfError> {
        self.fields
            .get(name)
            .copied()
            .ok_or_else(|| EbpfError::TracefsField {
                path: path.to_path_buf(),
                field: name,
            })
    }

    /// The largest flag value `__print_flags` lists for `prev_state`, shifted left once: the value
    /// the kernel reports for a preempted task (`TASK_REPORT_MAX` since 4.14, `TASK_STATE_MAX`
    /// before). `None` when the print format has no flag table.
    pub fn sched_switch_preempted_state(&self) -> Option<u64> {
        let start = self.print_fmt.find("__print_flags(")?;
        let table = &self.print_fmt[start..];
        let mut max = None;
        // Entries look like `{ 0x00000080, "I" }`.
        for entry in table.split('{').skip(1) {
            let Some((value, _)) = entry.split_once(',') else {
                continue;
            };
            let value = value.trim();
            let parsed = match value.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16).ok(),
                None => value.parse().ok(),
            };
            if let Some(v) = parsed {
                max = max.max(Some(v));
            }
        }
        max.and_then(|m: u64| m.checked_shl(1))
    }
}

/// `unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;` -> ("common_type", Field).
fn parse_field(rest: &str) -> Option<(String, Field)> {
    let mut parts = rest.split(';').map(str::trim);
    let decl = parts.next()?;
    let mut offset = None;
    let mut size = None;
    let mut signed = None;
    for part in parts {
        if let Some(v) = part.strip_prefix("offset:") {
            offset = v.parse().ok();
        } else if let Some(v) = part.strip_prefix("size:") {
            size = v.parse().ok();
        } else if let Some(v) = part.strip_prefix("signed:") {
            signed = Some(v == "1");
        }
    }
    // The name is the last identifier of the declaration, before any array suffix:
    // `char prev_comm[16]` -> `prev_comm`, `__data_loc char[] name` -> `name`.
    // Only a trailing `[...]` is an array suffix; the `[]` of `char[]` belongs to the type.
    let decl = match decl.trim_end().strip_suffix(']') {
        Some(head) => &head[..head.rfind('[')?],
        None => decl,
    }
    .trim_end();
    let name = decl
        .rsplit(|c: char| c.is_whitespace() || c == '*')
        .next()?;
    if name.is_empty() {
        return None;
    }
    Some((
        name.to_owned(),
        Field {
            offset: offset?,
            size: size?,
            signed: signed?,
        },
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    /// `sched_switch/format` of Linux 6.18 (x86_64).
    const SCHED_SWITCH_6_18: &str = include_str!("testdata/sched_switch.format.6.18");

    #[test]
    fn reads_prev_state_offset_and_size() {
        let path = Path::new("format");
        let f = TracepointFormat::parse(SCHED_SWITCH_6_18, path).unwrap();
        assert_eq!(
            f.field("prev_state", path).unwrap(),
            Field {
                offset: 32,
                size: 8,
                signed: true
            }
        );
        assert_eq!(
            f.field("prev_comm", path).unwrap(),
            Field {
                offset: 8,
                size: 16,
                signed: false
            }
        );
        assert_eq!(f.fields.len(), 11);
    }

    #[test]
    fn preempted_state_is_task_report_max() {
        let f = TracepointFormat::parse(SCHED_SWITCH_6_18, Path::new("format")).unwrap();
        assert_eq!(f.sched_switch_preempted_state(), Some(0x100));
    }

    #[test]
    fn preempted_state_follows_the_flag_table_in_decimal_too() {
        // Kernels before 4.14 print a longer table of decimal flags and report preemption as
        // TASK_STATE_MAX, the next power of two (a synthetic table of that shape).
        let text = "format:\n\tfield:long prev_state;\toffset:32;\tsize:8;\tsigned:1;\n\
            print fmt: \"%s%s\", REC->prev_state & (2048-1) ? __print_flags(REC->prev_state \
            & (2048-1), \"|\", { 1, \"S\"} , { 2, \"D\" }, { 512, \"P\" }, { 1024, \"N\" }) \
            : \"R\", REC->prev_state & 2048 ? \"+\" : \"\"\n";
        let f = TracepointFormat::parse(text, Path::new("format")).unwrap();
        assert_eq!(f.sched_switch_preempted_state(), Some(2048));
    }

    #[test]
    fn data_loc_strings_and_arrays_are_named_by_their_last_identifier() {
        let text = "format:\n\tfield:__data_loc char[] path;\toffset:24;\tsize:4;\tsigned:0;\n\
            \tfield:char prev_comm[16];\toffset:8;\tsize:16;\tsigned:0;\n\
            print fmt: \"%s\", __get_str(path)\n";
        let f = TracepointFormat::parse(text, Path::new("format")).unwrap();
        assert_eq!(f.fields.get("path").map(|f| f.offset), Some(24));
        assert_eq!(f.fields.get("prev_comm").map(|f| f.size), Some(16));
    }

    #[test]
    fn missing_field_names_file_and_field() {
        let path = Path::new("/x/format");
        let f = TracepointFormat::parse(SCHED_SWITCH_6_18, path).unwrap();
        let err = f.field("no_such_field", path).unwrap_err().to_string();
        assert!(
            err.contains("/x/format") && err.contains("no_such_field"),
            "{err}"
        );
    }

    #[test]
    fn malformed_field_line_is_reported_with_its_line() {
        let text = "name: x\nformat:\n\tfield:int a;\toffset:zero;\tsize:4;\tsigned:1;\n";
        let err = TracepointFormat::parse(text, Path::new("f"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("f:3"), "{err}");
    }

    #[test]
    fn missing_print_fmt_is_an_error() {
        let text = "name: x\nformat:\n\tfield:int a;\toffset:8;\tsize:4;\tsigned:1;\n";
        assert!(TracepointFormat::parse(text, Path::new("f")).is_err());
    }
}
