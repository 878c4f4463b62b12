//! Built-in file types: the families of validators, their header
//! signatures, the output types they produce and their default limits.

/// An output file type: `carved/NAME/OFFSET.EXT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Kind {
    pub name: &'static str,
    pub ext: &'static str,
}

impl Kind {
    pub(crate) const fn new(name: &'static str, ext: &'static str) -> Self {
        Self { name, ext }
    }
}

macro_rules! kinds {
    ($($id:ident = $name:literal, $ext:literal;)*) => {
        $(pub(crate) const $id: Kind = Kind::new($name, $ext);)*
    };
}

kinds! {
    JPG = "jpg", "jpg";
    PNG = "png", "png";
    GIF = "gif", "gif";
    BMP = "bmp", "bmp";
    TIF = "tif", "tif";
    PDF = "pdf", "pdf";
    ZIP = "zip", "zip";
    DOCX = "docx", "docx";
    DOCM = "docx", "docm";
    XLSX = "xlsx", "xlsx";
    XLSM = "xlsx", "xlsm";
    PPTX = "pptx", "pptx";
    PPTM = "pptx", "pptm";
    ODT = "odt", "odt";
    ODS = "ods", "ods";
    ODP = "odp", "odp";
    ODG = "odg", "odg";
    EPUB = "epub", "epub";
    JAR = "jar", "jar";
    APK = "apk", "apk";
    RAR = "rar", "rar";
    SEVENZ = "7z", "7z";
    GZ = "gz", "gz";
    SQLITE = "sqlite", "sqlite";
    EXE = "exe", "exe";
    DLL = "exe", "dll";
    SYS = "exe", "sys";
    ELF = "elf", "elf";
    ELF_SO = "elf", "so";
    WAV = "wav", "wav";
    AVI = "avi", "avi";
    WEBP = "webp", "webp";
    MP4 = "mp4", "mp4";
    M4A = "mp4", "m4a";
    M4V = "mp4", "m4v";
    MP4_3GP = "mp4", "3gp";
    MOV = "mov", "mov";
    HEIC = "heic", "heic";
    AVIF = "heic", "avif";
    EVTX = "evtx", "evtx";
    DOC = "doc", "doc";
    XLS = "xls", "xls";
    PPT = "ppt", "ppt";
    MSG = "msg", "msg";
    MSI = "msi", "msi";
    OLE = "ole", "ole";
    HTML = "html", "html";
}

/// A validator family: one structure parser, one or more output types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Fam {
    Jpeg,
    Png,
    Gif,
    Bmp,
    Tiff,
    Pdf,
    Zip,
    Rar,
    SevenZ,
    Gzip,
    Sqlite,
    Pe,
    Elf,
    Riff,
    Isobmff,
    Evtx,
    Ole,
    Html,
}

pub(crate) const FAMILIES: [Fam; 18] = [
    Fam::Jpeg,
    Fam::Png,
    Fam::Gif,
    Fam::Bmp,
    Fam::Tiff,
    Fam::Pdf,
    Fam::Zip,
    Fam::Rar,
    Fam::SevenZ,
    Fam::Gzip,
    Fam::Sqlite,
    Fam::Pe,
    Fam::Elf,
    Fam::Riff,
    Fam::Isobmff,
    Fam::Evtx,
    Fam::Ole,
    Fam::Html,
];

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

impl Fam {
    /// Header signatures: (bytes, offset of the bytes from the file start).
    pub(crate) fn signatures(self) -> &'static [(&'static [u8], u8)] {
        match self {
            Fam::Jpeg => &[(b"\xFF\xD8\xFF", 0)],
            Fam::Png => &[(b"\x89PNG\r\n\x1a\n", 0)],
            Fam::Gif => &[(b"GIF87a", 0), (b"GIF89a", 0)],
            Fam::Bmp => &[(b"BM", 0)],
            Fam::Tiff => &[(b"II*\0", 0), (b"MM\0*", 0), (b"II+\0", 0), (b"MM\0+", 0)],
            Fam::Pdf => &[(b"%PDF-", 0)],
            Fam::Zip => &[(b"PK\x03\x04", 0)],
            Fam::Rar => &[(b"Rar!\x1a\x07", 0)],
            Fam::SevenZ => &[(b"7z\xBC\xAF\x27\x1C", 0)],
            Fam::Gzip => &[(b"\x1f\x8b\x08", 0)],
            Fam::Sqlite => &[(b"SQLite format 3\0", 0)],
            Fam::Pe => &[(b"MZ", 0)],
            Fam::Elf => &[(b"\x7fELF", 0)],
            Fam::Riff => &[(b"RIFF", 0)],
            Fam::Isobmff => &[(b"ftyp", 4)],
            Fam::Evtx => &[(b"ElfFile\0", 0)],
            Fam::Ole => &[(b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1", 0)],
            Fam::Html => &[(b"<html", 0), (b"<!doctype html", 0)],
        }
    }

    /// Whether the signatures match in any ASCII case.
    pub(crate) fn case_insensitive(self) -> bool {
        self == Fam::Html
    }

    /// The output types this family produces.
    pub(crate) fn kinds(self) -> &'static [Kind] {
        match self {
            Fam::Jpeg => &[JPG],
            Fam::Png => &[PNG],
            Fam::Gif => &[GIF],
            Fam::Bmp => &[BMP],
            Fam::Tiff => &[TIF],
            Fam::Pdf => &[PDF],
            Fam::Zip => &[
                ZIP, DOCX, DOCM, XLSX, XLSM, PPTX, PPTM, ODT, ODS, ODP, ODG, EPUB, JAR, APK,
            ],
            Fam::Rar => &[RAR],
            Fam::SevenZ => &[SEVENZ],
            Fam::Gzip => &[GZ],
            Fam::Sqlite => &[SQLITE],
            Fam::Pe => &[EXE, DLL, SYS],
            Fam::Elf => &[ELF, ELF_SO],
            Fam::Riff => &[WAV, AVI, WEBP],
            Fam::Isobmff => &[MP4, M4A, M4V, MP4_3GP, MOV, HEIC, AVIF],
            Fam::Evtx => &[EVTX],
            Fam::Ole => &[DOC, XLS, PPT, MSG, MSI, OLE],
            Fam::Html => &[HTML],
        }
    }

    /// Short name used in notes and statistics.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Fam::Jpeg => "jpeg",
            Fam::Png => "png",
            Fam::Gif => "gif",
            Fam::Bmp => "bmp",
            Fam::Tiff => "tiff",
            Fam::Pdf => "pdf",
            Fam::Zip => "zip",
            Fam::Rar => "rar",
            Fam::SevenZ => "7z",
            Fam::Gzip => "gzip",
            Fam::Sqlite => "sqlite",
            Fam::Pe => "pe",
            Fam::Elf => "elf",
            Fam::Riff => "riff",
            Fam::Isobmff => "isobmff",
            Fam::Evtx => "evtx",
            Fam::Ole => "ole2",
            Fam::Html => "html",
        }
    }
}

/// Default maximum size of a carved file of type `name`. The validators'
/// work is bounded by the structures they walk; these bound the files.
pub(crate) fn default_max_size(name: &str) -> u64 {
    match name {
        "jpg" => 128 * MIB,
        "png" => 256 * MIB,
        "gif" => 64 * MIB,
        "bmp" => 512 * MIB,
        "tif" => 2 * GIB,
        "pdf" => GIB,
        "zip" | "docx" | "xlsx" | "pptx" | "odt" | "ods" | "odp" | "odg" | "epub" | "jar"
        | "apk" => 16 * GIB,
        "rar" | "7z" => 16 * GIB,
        "gz" => 4 * GIB,
        "sqlite" => 16 * GIB,
        "exe" | "elf" => 2 * GIB,
        "wav" | "avi" | "webp" => 4 * GIB,
        "mp4" | "mov" | "heic" => 64 * GIB,
        "evtx" => 2 * GIB,
        "doc" | "xls" | "ppt" | "msg" | "msi" | "ole" => 4 * GIB,
        "html" => 16 * MIB,
        _ => 64 * MIB,
    }
}

/// Types carved only when asked for (`--carve-types html` or `all`): HTML
/// documents are often stored inside archives and mail, where carving them
/// out separately is noise unless one looks for web pages.
pub(crate) const OPT_IN: &[&str] = &["html"];

/// Every built-in output type name.
pub(crate) fn all_type_names() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = FAMILIES
        .iter()
        .flat_map(|f| f.kinds().iter().map(|k| k.name))
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// Names accepted in `--carve-types` besides the type names themselves.
pub(crate) fn alias(name: &str) -> Option<&'static [&'static str]> {
    Some(match name {
        "jpeg" | "jfif" => &["jpg"],
        "htm" => &["html"],
        "tiff" => &["tif"],
        "gzip" | "tgz" => &["gz"],
        "sqlite3" | "db" => &["sqlite"],
        "pe" | "dll" | "sys" => &["exe"],
        "so" => &["elf"],
        "ole2" | "cfb" | "office97" => &["doc", "xls", "ppt", "msg", "msi", "ole"],
        "ooxml" => &["docx", "xlsx", "pptx"],
        "odf" => &["odt", "ods", "odp", "odg"],
        "office" => &[
            "doc", "xls", "ppt", "msg", "docx", "xlsx", "pptx", "odt", "ods", "odp", "odg",
        ],
        "riff" => &["wav", "avi", "webp"],
        "isobmff" | "m4a" | "m4v" | "3gp" => &["mp4"],
        "quicktime" => &["mov"],
        "avif" => &["heic"],
        "images" => &["jpg", "png", "gif", "bmp", "tif", "webp", "heic"],
        "archives" => &["zip", "rar", "7z", "gz"],
        "executables" => &["exe", "elf"],
        "media" => &["wav", "avi", "mp4", "mov"],
        _ => return None,
    })
}
