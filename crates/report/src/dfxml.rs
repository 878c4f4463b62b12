//! `dfxml.xml`: Digital Forensics XML describing the source image and one
//! `fileobject` per carved file, with its byte runs in the image and its
//! hashes, in the form tools reading DFXML (e.g. `dfxml` Python, The Sleuth
//! Kit's `tsk_loaddb` companions, bulk_extractor viewers) expect.
//!
//! Further per-file children (YARA matches of a carved file, say) are added
//! through [`write_with`]: it calls a function for each file object, inside
//! its element, after the standard children.

use crate::attrib::Attribution;
use crate::paths::ReportDir;
use crate::write::{create_file, io_err};
use crate::{JobResults, ReportError};
use std::io::{self, Write};
use trawl_core::CarvedFile;

/// Escapes text and attribute values (quotes included); drops characters
/// XML 1.0 cannot carry.
pub(crate) fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            '\t' | '\n' | '\r' => o.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {
                o.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => o.push(c),
        }
    }
    o
}

/// Writes extra children of a file object (indented by the caller's
/// convention: four spaces).
pub(crate) type Extra<'a> = dyn Fn(&CarvedFile, &mut dyn Write) -> io::Result<()> + 'a;

/// Writes this part of the report directory.
///
/// With the file-system listing, each carved file object says where it
/// lies: `<trawl:placement placement='allocated_file|embedded_in|partly_in|
/// unallocated|...' [path=… inode=… alloc=… partition_offset=…]/>`.
pub(crate) fn write(
    dir: &ReportDir,
    r: &JobResults,
    attr: Option<&Attribution<'_>>,
) -> Result<(), ReportError> {
    write_with(dir, r, &|c, w| match attr {
        None => Ok(()),
        Some(a) => {
            let p = a.placement(c);
            write!(w, "    <trawl:placement placement='{}'", esc(p.kind))?;
            if let Some(f) = p.file {
                write!(
                    w,
                    " path='{}' inode='{}' alloc='{}' partition_offset='{}'",
                    esc(&f.path),
                    f.inode,
                    esc(&f.alloc),
                    f.partition_offset
                )?;
            }
            writeln!(w, "/>")
        }
    })
}

/// Writes `dfxml.xml`, calling `extra` inside each file object.
pub(crate) fn write_with(
    dir: &ReportDir,
    r: &JobResults,
    extra: &Extra,
) -> Result<(), ReportError> {
    let (path, mut w) = create_file(dir, "dfxml.xml")?;
    document(&mut w, r, extra).map_err(io_err(&path))?;
    w.flush().map_err(io_err(&path))
}

fn hashdigests(
    w: &mut dyn Write,
    indent: &str,
    md5: &str,
    sha1: &str,
    sha256: &str,
) -> io::Result<()> {
    for (t, v) in [("md5", md5), ("sha1", sha1), ("sha256", sha256)] {
        if !v.is_empty() {
            writeln!(w, "{indent}<hashdigest type='{t}'>{}</hashdigest>", esc(v))?;
        }
    }
    Ok(())
}

fn document(w: &mut dyn Write, r: &JobResults, extra: &Extra) -> io::Result<()> {
    let p = &r.provenance;
    writeln!(w, "<?xml version='1.0' encoding='UTF-8'?>")?;
    writeln!(
        w,
        "<dfxml xmlns='http://www.forensicswiki.org/wiki/Category:Digital_Forensics_XML' \
         xmlns:dc='http://purl.org/dc/elements/1.1/' \
         xmlns:xsi='http://www.w3.org/2001/XMLSchema-instance' \
         xmlns:trawl='urn:trawl:dfxml' version='1.2.0'>"
    )?;
    writeln!(w, "  <metadata>")?;
    writeln!(w, "    <dc:type>Carve Report</dc:type>")?;
    // No job id, host, command line or start time: like every result file
    // but report.json, dfxml.xml is a pure function of the evidence and the
    // settings (same bytes for the same job, embedded or on a cluster).
    writeln!(w, "  </metadata>")?;
    let tool = if p.tool.is_empty() {
        trawl_core::TOOL_NAME
    } else {
        &p.tool
    };
    let version = if p.version.is_empty() {
        trawl_core::TOOL_VERSION
    } else {
        &p.version
    };
    writeln!(w, "  <creator version='1.0'>")?;
    writeln!(w, "    <program>{}</program>", esc(tool))?;
    writeln!(w, "    <version>{}</version>", esc(version))?;
    writeln!(w, "  </creator>")?;
    writeln!(w, "  <source>")?;
    writeln!(
        w,
        "    <image_filename>{}</image_filename>",
        esc(&r.evidence.path)
    )?;
    writeln!(w, "    <image_size>{}</image_size>", r.evidence.size)?;
    let h = &r.hashes;
    hashdigests(
        w,
        "    ",
        h.md5.as_deref().unwrap_or(""),
        h.sha1.as_deref().unwrap_or(""),
        h.sha256.as_deref().unwrap_or(""),
    )?;
    writeln!(w, "  </source>")?;
    volumes(w, r)?;
    for f in &r.carved {
        writeln!(w, "  <fileobject>")?;
        writeln!(
            w,
            "    <filename>{}</filename>",
            esc(crate::carved::path_of(f)
                .map_err(io::Error::other)?
                .as_str())
        )?;
        writeln!(w, "    <filesize>{}</filesize>", f.length)?;
        writeln!(w, "    <alloc>0</alloc>")?;
        writeln!(w, "    <byte_runs>")?;
        if f.byte_runs.is_empty() {
            writeln!(
                w,
                "      <byte_run img_offset='{}' file_offset='0' len='{}'/>",
                f.offset, f.length
            )?;
        }
        for b in &f.byte_runs {
            writeln!(
                w,
                "      <byte_run img_offset='{}' file_offset='{}' len='{}'/>",
                b.img_offset, b.file_offset, b.len
            )?;
        }
        writeln!(w, "    </byte_runs>")?;
        hashdigests(w, "    ", &f.md5, &f.sha1, &f.sha256)?;
        writeln!(
            w,
            "    <trawl:carve type='{}' extension='{}' validated='{}'{}/>",
            esc(&f.file_type),
            esc(&f.extension),
            f.validated,
            if f.note.is_empty() {
                String::new()
            } else {
                format!(" note='{}'", esc(&f.note))
            }
        )?;
        extra(f, w)?;
        writeln!(w, "  </fileobject>")?;
    }
    writeln!(w, "</dfxml>")?;
    Ok(())
}

/// fiwalk-style `<volume>` elements, one per file system, each holding a
/// `<fileobject>` per file-system entry with its byte runs and digests.
fn volumes(w: &mut dyn Write, r: &JobResults) -> io::Result<()> {
    let Some(s) = &r.filesystems else {
        return Ok(());
    };
    for (n, fs) in s.filesystems.iter().enumerate() {
        writeln!(w, "  <volume offset='{}'>", fs.partition_offset)?;
        writeln!(
            w,
            "    <partition_offset>{}</partition_offset>",
            fs.partition_offset
        )?;
        writeln!(w, "    <block_size>{}</block_size>", fs.block_size)?;
        writeln!(w, "    <ftype_str>{}</ftype_str>", esc(&fs.fs))?;
        if let Some(n) = fs.size.checked_div(fs.block_size) {
            writeln!(w, "    <block_count>{n}</block_count>")?;
        }
        if let Some(l) = &fs.label {
            writeln!(w, "    <label>{}</label>", esc(l))?;
        }
        for f in r
            .files
            .iter()
            .filter(|f| f.partition_offset == fs.partition_offset)
        {
            writeln!(w, "    <fileobject>")?;
            writeln!(w, "      <filename>{}</filename>", esc(&f.path))?;
            writeln!(w, "      <partition>{}</partition>", n + 1)?;
            let t = match f.kind.as_str() {
                "file" => "r",
                "dir" => "d",
                "link" => "l",
                _ => "-",
            };
            writeln!(w, "      <name_type>{t}</name_type>")?;
            writeln!(w, "      <filesize>{}</filesize>", f.size)?;
            writeln!(
                w,
                "      <alloc>{}</alloc>",
                u8::from(f.alloc == "allocated")
            )?;
            if f.alloc != "allocated" {
                writeln!(w, "      <unalloc>1</unalloc>")?;
            }
            if f.alloc == "orphan" {
                writeln!(w, "      <orphan>1</orphan>")?;
            }
            writeln!(w, "      <inode>{}</inode>", f.inode)?;
            if f.mode != 0 {
                writeln!(w, "      <mode>{}</mode>", f.mode & 0o7777)?;
                writeln!(w, "      <uid>{}</uid>", f.uid)?;
                writeln!(w, "      <gid>{}</gid>", f.gid)?;
            }
            for (name, v) in [
                ("mtime", f.times.mtime),
                ("ctime", f.times.ctime),
                ("atime", f.times.atime),
                ("crtime", f.times.crtime),
            ] {
                if let Some(s) = v.and_then(crate::files::rfc3339) {
                    writeln!(w, "      <{name}>{s}</{name}>")?;
                }
            }
            if !f.runs.is_empty() {
                writeln!(w, "      <byte_runs>")?;
                let mut fo = 0u64;
                for &(o, l) in &f.runs {
                    writeln!(
                        w,
                        "        <byte_run file_offset='{fo}' img_offset='{o}' len='{l}'/>"
                    )?;
                    fo += l;
                }
                writeln!(w, "      </byte_runs>")?;
            }
            hashdigests(
                w,
                "      ",
                f.md5.as_deref().unwrap_or(""),
                f.sha1.as_deref().unwrap_or(""),
                f.sha256.as_deref().unwrap_or(""),
            )?;
            if let Some(k) = &f.known {
                writeln!(
                    w,
                    "      <trawl:known status='{}' set='{}'/>",
                    esc(k),
                    esc(f.known_set.as_deref().unwrap_or(""))
                )?;
            }
            writeln!(w, "    </fileobject>")?;
        }
        writeln!(w, "  </volume>")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::JobResults;
    use trawl_core::ByteRun;

    fn results() -> JobResults {
        let mut r = JobResults {
            job_id: "job-1".into(),
            ..Default::default()
        };
        r.evidence.path = "/cases/a&b <disk>.raw".into();
        r.evidence.size = 4096;
        r.hashes.md5 = Some("d41d8cd98f00b204e9800998ecf8427e".into());
        r.provenance.analyses = vec!["carve".into()];
        r.provenance.command = vec!["trawl".into(), "scan".into(), "x'y\"z".into()];
        r.carved.push(CarvedFile {
            offset: 512,
            length: 100,
            file_type: "jpg".into(),
            extension: "jpg".into(),
            validated: false,
            note: "broken at +5: <bad> & \"worse\" \u{1}".into(),
            md5: "00".into(),
            sha1: "11".into(),
            sha256: "22".into(),
            byte_runs: vec![ByteRun {
                img_offset: 512,
                file_offset: 0,
                len: 100,
            }],
        });
        r
    }

    #[test]
    fn escapes_and_extra_children() {
        let dir = tempfile::tempdir().unwrap();
        write_with(&ReportDir::new(dir.path()), &results(), &|f, w| {
            writeln!(w, "    <yara_match rule='r{}'/>", f.offset)
        })
        .unwrap();
        let x = std::fs::read_to_string(dir.path().join("dfxml.xml")).unwrap();
        assert!(x.contains("<image_filename>/cases/a&amp;b &lt;disk&gt;.raw</image_filename>"));
        assert!(x.contains("<byte_run img_offset='512' file_offset='0' len='100'/>"));
        assert!(x.contains("<filename>carved/jpg/512.jpg</filename>"));
        assert!(x.contains("note='broken at +5: &lt;bad&gt; &amp; &quot;worse&quot; \\x01'"));
        assert!(x.contains("<yara_match rule='r512'/>"));
        assert!(x.contains("<hashdigest type='md5'>d41d8cd98f00b204e9800998ecf8427e</hashdigest>"));
        // Well-formed, per Python's XML parser when it is installed.
        if let Ok(out) = std::process::Command::new("python3")
            .args([
                "-c",
                "import sys,xml.etree.ElementTree as E;r=E.parse(sys.argv[1]).getroot();print(len(r.findall('{http://www.forensicswiki.org/wiki/Category:Digital_Forensics_XML}fileobject')))",
            ])
            .arg(dir.path().join("dfxml.xml"))
            .output()
        {
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1");
        }
    }
}
