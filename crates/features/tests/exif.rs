//! The `exif` structure scanner (exif.txt, gps.txt) against bulk_extractor's
//! own expectations for its test files, shard invariance, hostile input
//! and random bytes.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use trawl_core::Feature;
use trawl_core::spec::FeatureOptions;
use trawl_features::FeatureScanner;
use trawl_features::format::escape;

mod common;
use common::{be_test_data as corpora, random_bytes};

fn exif_only() -> FeatureScanner {
    let o = FeatureOptions {
        scanners: vec!["exif".into()],
        ..Default::default()
    };
    FeatureScanner::new(&o).unwrap()
}

fn scan_bytes(sc: &FeatureScanner, data: &[u8]) -> Vec<Feature> {
    let mut f = sc
        .scan_buffer(data, &AtomicBool::new(false))
        .unwrap()
        .features;
    f.sort_by(|a, b| a.sort_cmp(b));
    f
}

/// (recorder, path, feature, context) as the feature files hold them.
fn lines(fs: &[Feature]) -> Vec<(String, String, String, String)> {
    fs.iter()
        .map(|f| {
            (
                f.scanner.clone(),
                f.path.clone(),
                escape(&f.feature),
                escape(&f.context),
            )
        })
        .collect()
}

fn file_lines(c: &Path, name: &str) -> Vec<(String, String, String, String)> {
    let data = std::fs::read(c.join(name)).unwrap();
    lines(&scan_bytes(&exif_only(), &data))
}

/// The last line of `recorder` (as bulk_extractor's tests take `getLast`).
fn last<'a>(
    l: &'a [(String, String, String, String)],
    recorder: &str,
) -> &'a (String, String, String, String) {
    l.iter().rev().find(|x| x.0 == recorder).unwrap()
}

/// src/test_be.cpp, TEST_CASE("scan_exif1"): every `has(last, ...)`.
#[test]
fn exif_demo1_jpg_as_in_test_be() {
    let Some(c) = corpora("exif_demo1_jpg_as_in_test_be") else {
        return;
    };
    let l = file_lines(&c, "src/tests/exif_demo1.jpg");
    let (_, path, feature, ctx) = last(&l, "exif");
    // A JFIF + Exif JPEG is reported at its start, under the SHA-1 of its
    // first 4096 bytes (bulk_extractor 2.x's default hash); the TIFF header
    // inside it (offset 30) is skipped with the JPEG.
    assert_eq!(path, "0");
    let data = std::fs::read(c.join("src/tests/exif_demo1.jpg")).unwrap();
    use sha1::Digest;
    let h = sha1::Sha1::digest(&data[..4096]);
    let hexd: String = h.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(feature, &hexd);
    assert_eq!(l.iter().filter(|x| x.0 == "exif").count(), 1);
    for want in [
        "<ifd0.tiff.Make>Apple</ifd0.tiff.Make>",
        "<ifd0.tiff.Model>iPhone SE (2nd generation)</ifd0.tiff.Model>",
        "<ifd0.tiff.Orientation>1</ifd0.tiff.Orientation>",
        "<ifd0.tiff.XResolution>72/1</ifd0.tiff.XResolution>",
        "<ifd0.tiff.YResolution>72/1</ifd0.tiff.YResolution>",
        "<ifd0.tiff.ResolutionUnit>2</ifd0.tiff.ResolutionUnit>",
        "<ifd0.tiff.Software>15.2</ifd0.tiff.Software>",
        "<ifd0.tiff.DateTime>2021:12:19 12:04:36</ifd0.tiff.DateTime>",
        "<ifd0.tiff.YCbCrPositioning>1</ifd0.tiff.YCbCrPositioning>",
        "<ifd0.exif.ExposureTime>1/1000</ifd0.exif.ExposureTime>",
        "<ifd0.exif.FNumber>9/5</ifd0.exif.FNumber>",
        "<ifd0.exif.ExposureProgram>2</ifd0.exif.ExposureProgram>",
        "<ifd0.exif.PhotographicSensitivity>20</ifd0.exif.PhotographicSensitivity>",
        "<ifd0.exif.ExifVersion>0232</ifd0.exif.ExifVersion>",
        "<ifd0.exif.DateTimeOriginal>2021:12:19 12:04:36</ifd0.exif.DateTimeOriginal>",
        "<ifd0.exif.DateTimeDigitized>2021:12:19 12:04:36</ifd0.exif.DateTimeDigitized>",
        "<ifd0.exif.ComponentsConfiguration>\\001\\002\\003%00</ifd0.exif.ComponentsConfiguration>",
        "<ifd0.exif.ShutterSpeedValue>70777/7102</ifd0.exif.ShutterSpeedValue>",
        "<ifd0.exif.ApertureValue>54823/32325</ifd0.exif.ApertureValue>",
        "<ifd0.exif.BrightnessValue>38857/4398</ifd0.exif.BrightnessValue>",
        "<ifd0.exif.ExposureBiasValue>0/1</ifd0.exif.ExposureBiasValue>",
        "<ifd0.exif.MeteringMode>5</ifd0.exif.MeteringMode>",
        "<ifd0.exif.Flash>16</ifd0.exif.Flash>",
        "<ifd0.exif.FocalLength>399/100</ifd0.exif.FocalLength>",
        "<ifd0.exif.SubjectArea>ߝקࢩԲ</ifd0.exif.SubjectArea>",
        "<ifd0.exif.SubSecTime>912</ifd0.exif.SubSecTime>",
        "<ifd0.exif.SubSecTimeOriginal>912</ifd0.exif.SubSecTimeOriginal>",
        "<ifd0.exif.SubSecTimeDigitized>912</ifd0.exif.SubSecTimeDigitized>",
        "<ifd0.exif.FlashpixVersion>0100</ifd0.exif.FlashpixVersion>",
        "<ifd0.exif.ColorSpace>65535</ifd0.exif.ColorSpace>",
        "<ifd0.exif.PixelXDimension>4032</ifd0.exif.PixelXDimension>",
        "<ifd0.exif.PixelYDimension>3024</ifd0.exif.PixelYDimension>",
        "<ifd0.exif.SensingMethod>2</ifd0.exif.SensingMethod>",
        "<ifd0.exif.SceneType>1</ifd0.exif.SceneType>",
        "<ifd0.exif.ExposureMode>0</ifd0.exif.ExposureMode>",
        "<ifd0.exif.WhiteBalance>0</ifd0.exif.WhiteBalance>",
        "<ifd0.exif.FocalLengthIn35mmFilm>28</ifd0.exif.FocalLengthIn35mmFilm>",
        "<ifd0.exif.SceneCaptureType>0</ifd0.exif.SceneCaptureType>",
        "<ifd0.exif.LensSpecification>4183519/1048501 4183519/1048501 9/5 9/5</ifd0.exif.LensSpecification>",
        "<ifd0.exif.LensMake>Apple</ifd0.exif.LensMake>",
        "<ifd0.exif.LensModel>iPhone SE (2nd generation) back camera 3.99mm f/1.8</ifd0.exif.LensModel>",
        "<ifd0.gps.GPSLatitudeRef>N</ifd0.gps.GPSLatitudeRef>",
        "<ifd0.gps.GPSLatitude>41/1 28/1 58/100</ifd0.gps.GPSLatitude>",
        "<ifd0.gps.GPSLongitudeRef>W</ifd0.gps.GPSLongitudeRef>",
        "<ifd0.gps.GPSLongitude>70/1 37/1 2168/100</ifd0.gps.GPSLongitude>",
        "<ifd0.gps.GPSAltitudeRef>0</ifd0.gps.GPSAltitudeRef>",
        "<ifd0.gps.GPSAltitude>11909/2217</ifd0.gps.GPSAltitude>",
        "<ifd0.gps.GPSSpeedRef>K</ifd0.gps.GPSSpeedRef>",
        "<ifd0.gps.GPSSpeed>18195/40397</ifd0.gps.GPSSpeed>",
        "<ifd0.gps.GPSImgDirectionRef>T</ifd0.gps.GPSImgDirectionRef>",
        "<ifd0.gps.GPSImgDirection>211471/740</ifd0.gps.GPSImgDirection>",
        "<ifd0.gps.GPSDestBearingRef>T</ifd0.gps.GPSDestBearingRef>",
        "<ifd0.gps.GPSDestBearing>211471/740</ifd0.gps.GPSDestBearing>",
        "<ifd0.gps.GPSHPositioningError>36467/969</ifd0.gps.GPSHPositioningError>",
    ] {
        assert!(ctx.contains(want), "missing {want} in {ctx}");
    }
    assert!(ctx.starts_with("<exif>") && ctx.ends_with("</exif>"));
    // gps.txt (record_gps_data in scan_exif.cpp): no GPS date or time, so
    // DateTimeOriginal in ISO form; degrees and altitude/speed as C++
    // streams print doubles; no GPSTrack.
    let (_, gpath, gfeature, gctx) = last(&l, "gps");
    assert_eq!((gpath.as_str(), gfeature), ("0", &hexd));
    assert_eq!(
        gctx,
        "2021-12-19T12:04:36,41.4668,-70.6227,5.37167,0.450405,"
    );
}

/// src/test_be.cpp, TEST_CASE("scan_exif2"): a bare big-endian TIFF.
#[test]
fn exif_demo2_tiff_as_in_test_be() {
    let Some(c) = corpora("exif_demo2_tiff_as_in_test_be") else {
        return;
    };
    let l = file_lines(&c, "src/tests/exif_demo2.tiff");
    let (_, path, feature, ctx) = last(&l, "exif");
    assert_eq!(path, "0");
    // no JPEG, no hash: scan_exif.cpp's 32 zeros
    assert_eq!(feature, "00000000000000000000000000000000");
    for want in [
        "<ifd0.tiff.ImageWidth>199</ifd0.tiff.ImageWidth>",
        "<ifd0.tiff.Compression>5</ifd0.tiff.Compression>",
        "<ifd0.tiff.PhotometricInterpreation>2</ifd0.tiff.PhotometricInterpreation>",
        "<ifd0.tiff.StripOffsets>8</ifd0.tiff.StripOffsets>",
        "<ifd0.tiff.Orientation>1</ifd0.tiff.Orientation>",
        "<ifd0.tiff.SamplesPerPixel>4</ifd0.tiff.SamplesPerPixel>",
        "<ifd0.tiff.RowsPerStrip>47</ifd0.tiff.RowsPerStrip>",
        "<ifd0.tiff.StripByteCounts>6205</ifd0.tiff.StripByteCounts>",
        "<ifd0.tiff.XResolution>1207959552/16777216</ifd0.tiff.XResolution>",
        "<ifd0.tiff.YResolution>1207959552/16777216</ifd0.tiff.YResolution>",
        "<ifd0.tiff.PlanarConfiguration>1</ifd0.tiff.PlanarConfiguration>",
        "<ifd0.tiff.ResolutionUnit>2</ifd0.tiff.ResolutionUnit>",
        "<ifd0.tiff.Software>Mac OS X 10.5.8 (9L31a)</ifd0.tiff.Software>",
        "<ifd0.tiff.DateTime>2012:01:09 22:52:11</ifd0.tiff.DateTime>",
        "<ifd0.tiff.Artist>Jean Cornillon</ifd0.tiff.Artist>",
    ] {
        assert!(ctx.contains(want), "missing {want} in {ctx}");
    }
    // BitsPerSample is 8 8 8 8, one repeated pair: left out by bulk_extractor
    assert!(!ctx.contains("BitsPerSample"));
    assert!(l.iter().all(|x| x.0 != "gps"));
}

/// src/test_be.cpp, TEST_CASE("scan_exif3"): the PSD's ExifInfo resource.
#[test]
fn exif_demo3_psd_as_in_test_be() {
    let Some(c) = corpora("exif_demo3_psd_as_in_test_be") else {
        return;
    };
    let l = file_lines(&c, "src/tests/exif_demo3.psd");
    let (_, path, feature, ctx) = last(&l, "exif");
    // The PSD header (offset 0) never validates as a JPEG, so
    // bulk_extractor records the entries at the TIFF header of the
    // ExifInfo resource, with the zero feature.
    assert_eq!(path, "20862");
    assert_eq!(feature, "00000000000000000000000000000000");
    for want in [
        "<ifd0.tiff.Orientation>1</ifd0.tiff.Orientation>",
        "<ifd0.tiff.XResolution>3000000/10000</ifd0.tiff.XResolution>",
        "<ifd0.tiff.YResolution>3000000/10000</ifd0.tiff.YResolution>",
        "<ifd0.tiff.ResolutionUnit>2</ifd0.tiff.ResolutionUnit>",
        "<ifd0.tiff.Software>Adobe Photoshop 23.1 (Macintosh)</ifd0.tiff.Software>",
        "<ifd0.tiff.DateTime>2021:12:19 17:32:57</ifd0.tiff.DateTime>",
        "<ifd0.exif.ColorSpace>1</ifd0.exif.ColorSpace>",
        "<ifd0.exif.PixelXDimension>300</ifd0.exif.PixelXDimension>",
        "<ifd0.exif.PixelYDimension>300</ifd0.exif.PixelYDimension>",
        "<ifd1.tiff.Compression>6</ifd1.tiff.Compression>",
        "<ifd1.tiff.XResolution>72/1</ifd1.tiff.XResolution>",
        "<ifd1.tiff.YResolution>72/1</ifd1.tiff.YResolution>",
        "<ifd1.tiff.ResolutionUnit>2</ifd1.tiff.ResolutionUnit>",
        "<ifd1.tiff.JPEGInterchangeFormat>306</ifd1.tiff.JPEGInterchangeFormat>",
        "<ifd1.tiff.JPEGInterchangeFormatLength>0</ifd1.tiff.JPEGInterchangeFormatLength>",
    ] {
        assert!(ctx.contains(want), "missing {want} in {ctx}");
    }
}

/// tests/data_check.txt, "scan_exif": the two lines on files trawl scans
/// as they are (the two others are inside BASE64 text, a layer trawl does
/// not decode).
#[test]
fn data_check_exif_lines() {
    let Some(c) = corpora("data_check_exif_lines") else {
        return;
    };
    // `Data/Exif2-IPHONE5c.JPG-12 00000000000000000000000000000000 <exif>...`:
    // an Exif JPEG without JFIF fails bulk_extractor's validation, so its
    // entries stay pending and are recorded with the TIFF header's own at 12.
    let l = file_lines(&c, "tests/Data/Exif2-IPHONE5c.JPG");
    let ex: Vec<_> = l.iter().filter(|x| x.0 == "exif").collect();
    assert_eq!(ex.len(), 1, "{ex:?}");
    assert_eq!(ex[0].1, "12");
    assert_eq!(ex[0].2, "00000000000000000000000000000000");
    assert!(ex[0].3.starts_with(
        "<exif><ifd0.tiff.Make>Apple</ifd0.tiff.Make><ifd0.tiff.Model>iPhone 5c</ifd0.tiff.Model>"
    ));
    // every entry twice: once from the JPEG at 0, once from the TIFF at 12
    assert_eq!(
        ex[0]
            .3
            .matches("<ifd0.tiff.Make>Apple</ifd0.tiff.Make>")
            .count(),
        2
    );
    let g = last(&l, "gps");
    assert_eq!(
        (g.1.as_str(), g.2.as_str()),
        ("12", "00000000000000000000000000000000")
    );
    // GPSTimeStamp without GPSDateStamp: "T" and the raw rationals
    assert_eq!(g.3, "T22/1 42/1 349/100,36.6657,-121.813,18.2119,,");

    // `Data/MEGATRON-psd79095.psd-22504 8f52... <exif>...`: bulk_extractor
    // carries the PSD header's entries 22 KiB to the JPEG thumbnail at 22504;
    // trawl carries pending entries 1 KiB only (see exif.rs), so it reports
    // them at the ExifInfo TIFF header (29858) and nothing at 22504.
    let l = file_lines(&c, "tests/Data/MEGATRON-psd79095.psd");
    let ex: Vec<_> = l.iter().filter(|x| x.0 == "exif").collect();
    assert_eq!(ex.len(), 1, "{ex:?}");
    assert_eq!(ex[0].1, "29858");
    assert!(
        ex[0]
            .3
            .contains("<ifd0.tiff.Software>Adobe Photoshop CS4 Windows</ifd0.tiff.Software>")
    );
}

/// Every Exif photo of tests/Data/ExifPhotos: one record each, where
/// bulk_extractor's scan puts it (JFIF JPEGs at 0 with a hash, others at
/// their TIFF header with the zero feature and every entry twice).
#[test]
fn exif_photos() {
    let Some(c) = corpora("exif_photos") else {
        return;
    };
    let want = [
        ("All_Exif_Version/Exif_v0200.jpg", "0", true, "FUJIFILM"),
        ("All_Exif_Version/Exif_v0220.jpg", "0", true, ""),
        // progressive (SOF2): no SOF0 size, so jpeg_validator rejects it at SOS
        ("All_Exif_Version/Exif_v0221.jpg", "30", false, ""),
        ("All_Exif_Version/Exif_v0230.jpg", "12", false, "Canon"),
        (
            "GalaxyPhotos/IMG_20140722_235124.jpg",
            "12",
            false,
            "SAMSUNG",
        ),
        (
            "GalaxyPhotos/IMG_20140722_235127.jpg",
            "12",
            false,
            "SAMSUNG",
        ),
        ("Iphone/Exif-IPHONE4.JPG", "12", false, "Apple"),
        ("Iphone/Exif-IPHONE5c.JPG", "12", false, "Apple"),
        ("Iphone/Exif2-IPHONE5c.JPG", "12", false, "Apple"),
    ];
    for (f, path, hashed, make) in want {
        let l = file_lines(&c, &format!("tests/Data/ExifPhotos/{f}"));
        let ex: Vec<_> = l.iter().filter(|x| x.0 == "exif").collect();
        assert_eq!(ex.len(), 1, "{f}: {ex:?}");
        assert_eq!(ex[0].1, path, "{f}");
        assert_eq!(ex[0].2.len(), if hashed { 40 } else { 32 }, "{f}");
        assert_eq!(ex[0].2.bytes().all(|b| b == b'0'), !hashed, "{f}");
        let m = format!("<ifd0.tiff.Make>{make}");
        assert_eq!(
            ex[0].3.matches(&m).count(),
            if hashed { 1 } else { 2 },
            "{f}"
        );
    }
}

/// Sample files at odd offsets in one image.
fn sample_image(c: &Path) -> Vec<u8> {
    let mut img = vec![0u8; 3001];
    for (f, cut) in [
        ("src/tests/exif_demo1.jpg", usize::MAX),
        ("src/tests/exif_demo2.tiff", usize::MAX),
        ("src/tests/exif_demo3.psd", usize::MAX),
        ("tests/Data/Exif2-IPHONE5c.JPG", 70_000),
        (
            "tests/Data/ExifPhotos/All_Exif_Version/Exif_v0200.jpg",
            usize::MAX,
        ),
        ("src/tests/1.jpg", usize::MAX),
    ] {
        let d = std::fs::read(c.join(f)).unwrap();
        img.extend_from_slice(&d[..d.len().min(cut)]);
        img.extend(std::iter::repeat_n(0x5a, 4093));
    }
    img
}

fn scan_sharded(sc: &FeatureScanner, img: &[u8], shard: u64, margin: u64) -> Vec<Feature> {
    let ev = trawl_evidence::MemEvidence::new("mem", img.to_vec(), false);
    common::scan_sharded(sc, &ev, shard, margin)
}

#[test]
fn same_output_for_every_shard_plan() {
    let Some(c) = corpora("same_output_for_every_shard_plan") else {
        return;
    };
    let img = sample_image(&c);
    let sc = exif_only();
    let whole = lines(&scan_bytes(&sc, &img));
    // demo1, demo2, demo3 (PSD TIFF), iPhone (TIFF at 12), v0200
    assert_eq!(
        whole.iter().filter(|x| x.0 == "exif").count(),
        5,
        "{whole:#?}"
    );
    let mut seen = std::collections::BTreeSet::new();
    for l in &whole {
        assert!(seen.insert((l.0.clone(), l.1.clone())), "twice: {l:?}");
    }
    for (shard, margin) in [
        (4096, 0),
        (4096, 1000),
        (65536, 0),
        (65536, 70000),
        (1 << 30, 0),
    ] {
        let got = lines(&scan_sharded(&sc, &img, shard, margin));
        assert_eq!(got, whole, "shard {shard}, margin {margin}");
    }
}

#[test]
fn nothing_on_random_bytes() {
    let sc = exif_only();
    for seed in 1..=4u64 {
        let data = random_bytes(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15), 8 << 20);
        let f = scan_bytes(&sc, &data);
        assert!(f.is_empty(), "{:?}", lines(&f));
    }
}

#[test]
fn no_panic_on_truncated_and_mutated_samples() {
    let Some(c) = corpora("no_panic_on_truncated_and_mutated_samples") else {
        return;
    };
    let sc = exif_only();
    for f in [
        "src/tests/exif_demo1.jpg",
        "src/tests/exif_demo2.tiff",
        "src/tests/exif_demo3.psd",
    ] {
        let d = std::fs::read(c.join(f)).unwrap();
        let d = &d[..d.len().min(24_000)];
        for cut in (0..d.len()).step_by(97) {
            let _ = scan_bytes(&sc, &d[..cut]);
        }
        let noise = random_bytes(7, 4096);
        for k in 0..300usize {
            let mut m = d.to_vec();
            for j in 0..8 {
                let at = (k * 131 + j * 977) % m.len().min(4096);
                m[at] = noise[(k * 8 + j) % noise.len()];
            }
            let _ = scan_bytes(&sc, &m);
        }
    }
}

/// bulk_extractor's `gps` scanner (scan_gps.flex) on tests/Data/garmin_gpx.xml:
/// the `<time>` of the metadata is written when the first `<trkpt` clears
/// the lexer's values, each track point at its `</trkpt>`; the feature is
/// TIME,LAT,LON,ELE,SPEED,COURSE and the context empty.
#[test]
fn garmin_gpx_track_points_as_scan_gps_writes_them() {
    let Some(c) = corpora("garmin_gpx_track_points_as_scan_gps_writes_them") else {
        return;
    };
    let data = std::fs::read(c.join("tests/Data/garmin_gpx.xml")).unwrap();
    let o = FeatureOptions {
        scanners: vec!["gps".into()],
        ..Default::default()
    };
    let sc = FeatureScanner::new(&o).unwrap();
    let got = lines(&scan_bytes(&sc, &data));
    let find = |pat: &[u8], nth: usize| {
        data.windows(pat.len())
            .enumerate()
            .filter(|(_, w)| *w == pat)
            .nth(nth)
            .unwrap()
            .0
            .to_string()
    };
    let gps = |path: String, f: &str| ("gps".to_string(), path, f.to_string(), String::new());
    assert_eq!(
        got,
        [
            gps(find(b"<trkpt", 0), "2009-10-17T22:58:43Z,,,,,"),
            gps(
                find(b"</trkpt>", 0),
                "2009-10-17T18:37:26Z,47.644548,-122.326897,4.46,,"
            ),
            gps(
                find(b"</trkpt>", 1),
                "2010-10-16T20:46:52Z,38.866110,-77.136286,90.98,21.96,87.53"
            ),
        ]
    );
    // the same whatever the shard plan: the file across a shard boundary
    let mut img = vec![b' '; 3000];
    img.extend_from_slice(&data);
    img.resize(12_288, b' ');
    let whole = lines(&scan_bytes(&sc, &img));
    assert_eq!(whole.len(), 3);
    for (shard, margin) in [(4096u64, 0u64), (4096, 64), (1 << 20, 0)] {
        let mut s = scan_sharded(&sc, &img, shard, margin)
            .into_iter()
            .filter(|f| f.scanner == "gps")
            .collect::<Vec<_>>();
        s.sort_by(|a, b| a.sort_cmp(b));
        assert_eq!(lines(&s), whole, "shard {shard} margin {margin}");
    }
}
