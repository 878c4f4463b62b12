//! bulk_extractor's `net` scanner: IPv4 / IPv6 packets (TCP, UDP, ICMPv6)
//! carved from raw data, on their own, behind an Ethernet header, or inside
//! a pcap record.
//!
//! Writes bulk_extractor 2.x's feature files:
//!
//! * `ip.txt` — the source and destination address of every packet, context
//!   `struct ip L (src) cksum-ok` / `struct ip6_hdr R (dst) cksum-bad` (`L`
//!   and `R` guessed from the TTL: a power of two (32, 64, 128, 255) means a
//!   local source); the line `0xd4,0xc3,0xb2,0xa1` / `TCPDUMP file` at every
//!   little-endian pcap file header.
//! * `ether.txt` — the MAC addresses of an Ethernet header carrying a valid
//!   IP packet, `00:0C:29:26:BB:CD` / `(ether_dhost)` and `(ether_shost)`
//!   (addresses with two zero or two `FF` octets left out).
//! * `tcp.txt` — `192.168.0.91 2239 -> 192.168.0.55 80 (TCP)` / ` Size: 412`
//!   (also `(UDP)`), and `SRC -> DST (ICMPv6)` / ` Type: 135 Code: 0`.
//! * `packets` (`features/packets.pcap`) — every carved packet as one pcap
//!   record (Ethernet link type): a record found in a pcap file as it is
//!   (raw-IP records get an Ethernet header of twelve zero bytes and the
//!   EtherType, as bulk_extractor's pcap writer forges it); a packet found
//!   without a pcap record gets time stamp 0 and, without an Ethernet
//!   header, that forged header.
//!
//! # What is recognised (bulk_extractor's `scan_net_t`)
//!
//! An IP header: IPv4 with a 20-byte header (first byte `0x45`), fragment
//! field 0 or DF, protocol TCP or UDP, total length 28..=8192; IPv6 with
//! next header TCP, UDP or ICMPv6 and payload length at most 8192 (at least
//! 20, 8, 4). At each position bulk_extractor tries, in this order:
//!
//! 1. a pcap record header (time stamp from 1990 to 2040 — bulk_extractor:
//!    two years from the day of the scan —
//!    microseconds ≤ 10⁶, 40 ≤ caplen ≤ len ≤ 65535) followed by another
//!    one or by the end of the data, holding a raw IP packet or an Ethernet
//!    frame with one: the features are at the record's data, the checksum
//!    is only reported;
//! 2. an Ethernet header (EtherType IPv4 with `0x45`, or IPv6) before an IP
//!    header whose checksum is right (IPv4 header checksum; for IPv6 the
//!    TCP / UDP / ICMPv6 checksum);
//! 3. an IP header with a right checksum and plausible addresses;
//!
//! and skips what it carved (a whole pcap record, even one without IP).
//! Here every candidate IP header is decided alone from its window: BE's
//! loop is replayed from 930 bytes before it, and the header is reported
//! when the loop carves a structure holding it (a pcap record 30 or 16
//! bytes before, an Ethernet header 14 bytes before, or the header itself),
//! not when it skips over it. So 802.11 frames in pcap records are skipped
//! as bulk_extractor 2.x's `scan_net` skips them.
//!
//! # Deliberate differences from bulk_extractor
//!
//! * IPv6 checksums are computed correctly (RFC 8200 pseudo-header); BE's
//!   `IPv6L3Chksum` drops the first payload word and only works at offset 0.
//! * A bare IP packet is reported at its own offset and written with its
//!   own bytes behind the pcap writer's forged header (BE's `carveIPFrame`
//!   reports it 14 bytes late, writes MACs `00 01 .. 0b`, the IPv6
//!   EtherType byte-swapped and the bytes at the start of the page).
//! * `tcp.txt` for an Ethernet frame in a pcap record takes the ports from
//!   the TCP/UDP header (BE reads them from the IP header there).
//! * A packet with port 0 yields nothing (BE has already written its
//!   `ip.txt` lines when it gives up on it).
//! * BE's loop is replayed from 930 bytes before each header, so a
//!   structure longer than that which started earlier is not seen; pcap records longer than the window (about 60 KiB) are not
//!   carved. The memory structures of `carve_net_memory` (`sockaddr_in`,
//!   `_TCPT_OBJECT`, off by default in BE) are not searched; 802.11 frames
//!   (BE 2.2's `wifi.txt` / `packets_80211.pcap`) are not reported.

use crate::records::{Record, WINDOW};
use std::ops::Range;

/// The scanner's feature files.
pub const RECORDERS: &[&str] = &[
    "ip",
    "ether",
    "tcp",
    crate::records::PCAP_RECORDER,
    PCAP_80211,
];

/// The recorder of IEEE 802.11 frames: `packets_80211.pcap`, link type
/// `DLT_IEEE802_11` (105), as bulk_extractor's pcap writer names it.
pub const PCAP_80211: &str = "packets_80211";

/// Offsets of the IP header in an 802.11 data frame: the MAC header (24
/// bytes, +2 with QoS, +6 with a fourth address) and LLC/SNAP (8 bytes).
const DOT11_IP_OFFSETS: [usize; 4] = [32, 34, 38, 40];

/// The offset of the IP packet in the 802.11 data frame at `d` (protocol
/// version 0, type data, LLC/SNAP with EtherType IPv4 or IPv6), if it is one.
fn dot11_ip(b: &[u8], d: usize) -> Option<usize> {
    let fc0 = *b.get(d)?;
    let fc1 = *b.get(d + 1)?;
    if fc0 & 0x0f != 0x08 || fc1 & 0x40 != 0 {
        // not version 0 / type data, or protected
        return None;
    }
    let mut h = 24;
    if fc0 & 0x80 != 0 {
        h += 2; // QoS control
    }
    if fc1 & 0x03 == 0x03 {
        h += 6; // fourth address
    }
    let llc = b.get(d + h..d + h + 8)?;
    (llc[..6] == [0xaa, 0xaa, 0x03, 0, 0, 0] && matches!(llc[6..], [0x08, 0x00] | [0x86, 0xdd]))
        .then_some(h + 8)
}

/// The fixed bytes of an Ethernet/IPv4 ARP frame from its EtherType on:
/// EtherType 0x0806, hardware type 1, protocol 0x0800, sizes 6 and 4,
/// operation high byte 0 (request 1 or reply 2 follows).
const ARP_PATTERN: [u8; 9] = [0x08, 0x06, 0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00];

/// ARP frames whose Ethernet header starts in `own` (bulk_extractor's
/// scan_net does not read ARP; trawl reports it in the same files): the
/// sender's and target's MAC addresses in ether.txt (`(arp_sha)`,
/// `(arp_tha)`, all-zero and broadcast ones left out), their IPv4
/// addresses in ip.txt (`struct arp (spa)` / `(tpa)`), and the frame in
/// packets.pcap: its pcap record as it is when one holds exactly the frame,
/// else a record with time stamp 0.
fn arp(buf: &[u8], own: &Range<usize>, out: &mut Vec<Record>) {
    let lo = (own.start + 12).min(buf.len());
    let hi = (own.end + 12 + ARP_PATTERN.len()).min(buf.len());
    for k in memchr::memmem::find_iter(&buf[lo..hi], &ARP_PATTERN) {
        let e = lo + k - 12;
        if e >= own.end {
            break;
        }
        let Some(f) = buf.get(e..e + 42) else {
            continue;
        };
        let op = f[21];
        let (sha, spa, tha, tpa) = (&f[22..28], &f[28..32], &f[32..38], &f[38..42]);
        if !(op == 1 || op == 2) || invalid_mac(sha) || invalid_ip4(spa) {
            continue;
        }
        out.push(rec(
            "ether",
            e,
            mac_string(sha).into_bytes(),
            b"(arp_sha)".to_vec(),
        ));
        if !invalid_mac(tha) && tha != [0xff; 6] {
            out.push(rec(
                "ether",
                e,
                mac_string(tha).into_bytes(),
                b"(arp_tha)".to_vec(),
            ));
        }
        out.push(rec(
            "ip",
            e,
            ip_string(spa).into_bytes(),
            b"struct arp (spa)".to_vec(),
        ));
        if tpa != [0; 4] {
            out.push(rec(
                "ip",
                e,
                ip_string(tpa).into_bytes(),
                b"struct arp (tpa)".to_vec(),
            ));
        }
        // the frame: 42 bytes, or up to 60 with Ethernet padding
        let in_record = e.checked_sub(16).and_then(|q| {
            let cap = le32(buf, q + 8)? as usize;
            let len = le32(buf, q + 12)? as usize;
            let ts = le32(buf, q)?;
            ((42..=64).contains(&cap)
                && cap <= len
                && ts >= TIME_MIN
                && ts <= time_max()
                && e + cap <= buf.len())
            .then(|| buf[q..e + cap].to_vec())
        });
        let pkt = in_record.unwrap_or_else(|| pcap_record(&[], f));
        out.push(rec(crate::records::PCAP_RECORDER, e, pkt, Vec::new()));
    }
}

/// The records of the 802.11 capture whose file header is at `p`
/// (`DLT_IEEE802_11`): every record chained from it within the window that
/// is not an IP-carrying data frame (those are carved where their IP header
/// is decided), copied as they are to `packets_80211.pcap`.
fn dot11_records(buf: &[u8], p: usize, own: &Range<usize>, out: &mut Vec<Record>) {
    if le32(buf, p + 20) != Some(105) {
        return;
    }
    let end = (p + crate::records::WINDOW).min(buf.len());
    let mut q = p + 24;
    while let Some(h) = pcap_hdr(&buf[..end], q) {
        let r_end = q + 16 + h.cap;
        if r_end > end {
            break;
        }
        let carries_ip = dot11_ip(buf, q + 16).is_some_and(|o| sanity(buf, q + 16 + o).is_some());
        if !carries_ip && own.contains(&q) {
            out.push(rec(PCAP_80211, q, buf[q..r_end].to_vec(), Vec::new()));
        }
        q = r_end;
    }
}

/// How far back a covering structure is looked for.
const LOOKBACK: usize = 900;
/// Bytes read before a candidate IP header.
const READ_BEFORE: usize = LOOKBACK + 60;
/// An IP header is at most this far after the start of its structure.
const LEAD: usize = 30;
/// bulk_extractor's `min_packet_bytes`: nothing starts closer to the end.
const MIN_PACKET_BYTES: usize = 40;
/// Longest IP packet accepted (BE's "jumbogram" limit).
const MAX_IP_LEN: usize = 8192;
/// 1990-01-01: no pcap record is older.
const TIME_MIN: u32 = 631_152_000;
const PCAP_FILE_MAGIC: [u8; 8] = [0xd4, 0xc3, 0xb2, 0xa1, 0x02, 0x00, 0x04, 0x00];

/// Latest pcap time stamp accepted: 2040-01-01. bulk_extractor takes two
/// years from the day of the scan; a fixed date keeps a job's results the
/// same whenever it is run (a deliberate difference).
const TIME_MAX: u32 = 2_208_988_800;

fn time_max() -> u32 {
    TIME_MAX
}

/// The bytes readable for one candidate, and whether their end is the end
/// of the data.
struct View<'a> {
    b: &'a [u8],
    end_is_true: bool,
}

fn be16(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]))
}

fn le32(b: &[u8], i: usize) -> Option<u32> {
    let s = b.get(i..i + 4)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

/// An IP header that passed BE's `sanityCheckIP46Header`.
#[derive(Debug, Clone, Copy)]
struct Ip {
    v6: bool,
    /// Index of the header in the view.
    at: usize,
    ttl: u8,
    nxt: u8,
    /// Header length (20 or 40).
    hlen: usize,
    payload: usize,
    /// The IPv4 header checksum is right (IPv6: see [`Ip::cksum_ok`]).
    v4_cksum: bool,
}

impl Ip {
    /// BE's `checksum_valid`: the IPv4 header checksum, or the IPv6
    /// packet's TCP / UDP / ICMPv6 checksum (computed on demand).
    fn cksum_ok(&self, b: &[u8]) -> bool {
        if !self.v6 {
            return self.v4_cksum;
        }
        b.get(self.at..self.at + 40 + self.payload)
            .is_some_and(|p| ip6_l4_cksum_ok(p, self.nxt))
    }
    fn len(&self) -> usize {
        self.hlen + self.payload
    }
    fn src<'a>(&self, b: &'a [u8]) -> &'a [u8] {
        if self.v6 {
            &b[self.at + 8..self.at + 24]
        } else {
            &b[self.at + 12..self.at + 16]
        }
    }
    fn dst<'a>(&self, b: &'a [u8]) -> &'a [u8] {
        if self.v6 {
            &b[self.at + 24..self.at + 40]
        } else {
            &b[self.at + 16..self.at + 20]
        }
    }
}

/// One's-complement sum of big-endian words (odd last byte as high byte).
fn sum16(data: &[u8], mut sum: u64) -> u64 {
    let mut it = data.chunks_exact(2);
    for w in &mut it {
        sum += u64::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [x] = it.remainder() {
        sum += u64::from(*x) << 8;
    }
    sum
}

fn fold(mut sum: u64) -> u16 {
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// BE's IPv4 header check: the complement of the sum of the other nine
/// words equals the stored checksum.
fn ip4_cksum_ok(h: &[u8]) -> bool {
    let s = sum16(&h[..10], 0);
    let s = sum16(&h[12..20], s);
    !fold(s) == u16::from_be_bytes([h[10], h[11]])
}

/// The TCP / UDP / ICMPv6 checksum of an IPv6 packet (`p` = header + payload).
fn ip6_l4_cksum_ok(p: &[u8], nxt: u8) -> bool {
    let off = match nxt {
        6 => 16,
        17 => 6,
        _ => 2,
    };
    let l4 = &p[40..];
    if l4.len() < off + 2 {
        return false;
    }
    let mut s = sum16(&p[8..40], 0);
    s += l4.len() as u64 + u64::from(nxt);
    s = sum16(&l4[..off], s);
    s = sum16(&l4[off + 2..], s);
    let want = u16::from_be_bytes([l4[off], l4[off + 1]]);
    let got = !fold(s);
    got == want || (nxt == 17 && got == 0 && want == 0xffff)
}

/// BE's `sanityCheckIP46Header` at `i`.
fn sanity(b: &[u8], i: usize) -> Option<Ip> {
    let first = *b.get(i)?;
    if first == 0x45 {
        let h = b.get(i..i + 20)?;
        if !matches!((h[6], h[7]), (0, 0) | (0x40, 0)) || !matches!(h[9], 6 | 17) {
            return None;
        }
        let tot = usize::from(u16::from_be_bytes([h[2], h[3]]));
        if !(28..=MAX_IP_LEN).contains(&tot) || i + tot > b.len() {
            return None;
        }
        return Some(Ip {
            v6: false,
            at: i,
            ttl: h[8],
            nxt: h[9],
            hlen: 20,
            payload: tot - 20,
            v4_cksum: ip4_cksum_ok(h),
        });
    }
    if first >> 4 != 6 {
        return None;
    }
    let h = b.get(i..i + 40)?;
    let nxt = h[6];
    let min = match nxt {
        6 => 20,
        17 => 8,
        58 => 4,
        _ => return None,
    };
    let plen = usize::from(u16::from_be_bytes([h[4], h[5]]));
    // BE compares the payload length, not header + payload, with the room left
    if i + plen > b.len() || plen > MAX_IP_LEN || plen < min {
        return None;
    }
    Some(Ip {
        v6: true,
        at: i,
        ttl: h[7],
        nxt,
        hlen: 40,
        payload: plen,
        v4_cksum: false,
    })
}

/// The ports of a TCP / UDP packet, if its header is there.
fn ports(b: &[u8], ip: &Ip) -> Option<(u16, u16)> {
    let t = ip.at + ip.hlen;
    let need = match ip.nxt {
        6 => 20,
        17 => 8,
        _ => return None,
    };
    b.get(t..t + need)?;
    Some((be16(b, t)?, be16(b, t + 2)?))
}

/// BE throws the packet away when a port is 0.
fn port0(b: &[u8], ip: &Ip) -> bool {
    matches!(ports(b, ip), Some((0, _) | (_, 0)))
}

/// BE's `invalidIP4`.
fn invalid_ip4(c: &[u8]) -> bool {
    c[0] == 0
        || c[0] == 255
        || c[0] == 127
        || c[0] >= 224
        || (c[1] == 0 && c[2] == 0)
        || (c[1] == 255 && c[2] == 255)
        || c[3] == 0
        || c[3] == 255
        || (c[0] == c[1] && c[1] == c[2])
}

/// BE's `invalidIP6`: only global unicast, link-local unicast and `ff0X::`
/// multicast addresses are plausible.
fn invalid_ip6(a: &[u8]) -> bool {
    if a[0] & 0xe0 == 0x20 {
        return false;
    }
    if a[0] == 0xfe && a[1] & 0xc0 == 0x80 {
        return false;
    }
    if a[0] == 0xff {
        return a[2..10].iter().any(|&x| x != 0) || a[1] > 0x0f;
    }
    true
}

fn invalid_ip(a: &[u8]) -> bool {
    if a.len() == 4 {
        invalid_ip4(a)
    } else {
        invalid_ip6(a)
    }
}

/// BE's `invalidMAC`: two zero or two 0xff octets.
fn invalid_mac(m: &[u8]) -> bool {
    m.iter().filter(|&&x| x == 0).count() > 1 || m.iter().filter(|&&x| x == 0xff).count() > 1
}

/// `inet_ntop` (glibc) of an IPv4 or IPv6 address.
fn ip_string(a: &[u8]) -> String {
    if a.len() == 4 {
        return format!("{}.{}.{}.{}", a[0], a[1], a[2], a[3]);
    }
    let w: Vec<u16> = a
        .chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect();
    // longest run of zero words (at least two), the first on a tie
    let (mut best, mut best_len) = (usize::MAX, 0);
    let mut i = 0;
    while i < 8 {
        if w[i] == 0 {
            let s = i;
            while i < 8 && w[i] == 0 {
                i += 1;
            }
            if i - s > best_len {
                best = s;
                best_len = i - s;
            }
        } else {
            i += 1;
        }
    }
    if best_len < 2 {
        best = usize::MAX;
    }
    let mut out = String::new();
    let mut i = 0;
    while i < 8 {
        if i == best {
            out.push(':');
            i += best_len;
            if i == 8 {
                out.push(':');
            }
            continue;
        }
        if i > 0 {
            out.push(':');
        }
        if i == 6 && best == 0 && (best_len == 6 || (best_len == 5 && w[5] == 0xffff)) {
            out.push_str(&ip_string(&a[12..16]));
            break;
        }
        out.push_str(&format!("{:x}", w[i]));
        i += 1;
    }
    out
}

fn mac_string(m: &[u8]) -> String {
    m.iter()
        .map(|x| format!("{x:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// A pcap record header (BE's `likely_valid_pcap_packet_header`).
#[derive(Debug, Clone, Copy)]
struct PcapHdr {
    cap: usize,
}

fn pcap_hdr(b: &[u8], q: usize) -> Option<PcapHdr> {
    let secs = le32(b, q)?;
    let usec = le32(b, q + 4)?;
    let cap = le32(b, q + 8)?;
    let len = le32(b, q + 12)?;
    let lim = MIN_PACKET_BYTES as u32..=65535;
    if secs < TIME_MIN || secs > time_max() || usec > 1_000_000 {
        return None;
    }
    if !lim.contains(&cap) || !lim.contains(&len) || cap > len {
        return None;
    }
    Some(PcapHdr { cap: cap as usize })
}

impl View<'_> {
    /// A pcap record BE carves at `q`: its data in the view, followed by
    /// another plausible record header or by the end of the data.
    fn pcap_ok(&self, q: usize) -> Option<PcapHdr> {
        let h = pcap_hdr(self.b, q)?;
        let end = q + 16 + h.cap;
        if end > self.b.len() {
            return None;
        }
        if (end == self.b.len() && self.end_is_true) || pcap_hdr(self.b, end).is_some() {
            Some(h)
        } else {
            None
        }
    }

    /// An Ethernet frame BE carves at `e`: its IP packet.
    fn ether_ok(&self, e: usize) -> Option<Ip> {
        let b = self.b;
        let et = be16(b, e + 12)?;
        let v = *b.get(e + 14)?;
        if !((et == 0x0800 && v == 0x45) || (et == 0x86dd && v >> 4 == 6)) {
            return None;
        }
        let ip = sanity(b, e + 14)?;
        (!port0(b, &ip) && ip.cksum_ok(b)).then_some(ip)
    }

    /// A bare IP packet BE carves at `p`.
    fn ip_ok(&self, p: usize) -> Option<Ip> {
        if self.end_is_true && p + MIN_PACKET_BYTES >= self.b.len() {
            return None;
        }
        let ip = sanity(self.b, p)?;
        let ok = !invalid_ip(ip.src(self.b))
            && !invalid_ip(ip.dst(self.b))
            && !port0(self.b, &ip)
            && ip.cksum_ok(self.b);
        ok.then_some(ip)
    }

    /// What BE carves at `x` (pcap record, Ethernet frame, bare IP packet,
    /// in its order), and how many bytes it then skips.
    fn carve(&self, x: usize) -> Option<(Owner, Option<Ip>, usize)> {
        let b = self.b;
        if let Some(h) = self.pcap_ok(x) {
            let (owner, ip) = match sanity(b, x + 16) {
                Some(ip) => (Owner::PcapRaw(x), Some(ip)),
                None => match sanity(b, x + 30) {
                    Some(ip) => (Owner::PcapEther(x), Some(ip)),
                    None => match dot11_ip(b, x + 16).and_then(|o| sanity(b, x + 16 + o)) {
                        Some(ip) => (Owner::Pcap80211(x), Some(ip)),
                        None => (Owner::Opaque, None),
                    },
                },
            };
            // BE gives up on the record (and moves one byte on) at port 0
            if !ip.is_some_and(|ip| port0(b, &ip)) {
                return Some((owner, ip, 16 + h.cap));
            }
        }
        if matches!(b.get(x + 12..x + 14), Some([0x08, 0x00] | [0x86, 0xdd]))
            && let Some(ip) = self.ether_ok(x)
        {
            let n = (14 + ip.len()).min(b.len() - x);
            return Some((Owner::Ether(x), Some(ip), n));
        }
        let first = *b.get(x)?;
        if (first == 0x45 || first >> 4 == 6)
            && let Some(ip) = self.ip_ok(x)
        {
            let n = ip.len().min(b.len() - x);
            return Some((Owner::Bare, Some(ip), n));
        }
        None
    }
}

/// Which structure an IP header belongs to.
enum Owner {
    /// Ethernet frame in a pcap record at `q`.
    PcapEther(usize),
    /// Raw IP packet in a pcap record at `q`.
    PcapRaw(usize),
    /// IEEE 802.11 data frame (LLC/SNAP, IP) in a pcap record at `q`.
    Pcap80211(usize),
    /// Ethernet frame at `e`.
    Ether(usize),
    /// Bare IP packet.
    Bare,
    /// A pcap record without an IP packet: skipped, not written.
    Opaque,
}

/// The owner of the IP header at `i` and its parsed header, if BE reports
/// it: BE's loop replayed from [`LOOKBACK`] bytes before the header's
/// earliest possible structure, carving and skipping, until it reaches a
/// structure holding this header or skips over it.
fn decide(v: &View<'_>, i: usize) -> Option<(Owner, Ip)> {
    sanity(v.b, i)?;
    // cheap: some structure BE would carve holds this header
    let pcap_before = |k: usize| i.checked_sub(k).is_some_and(|q| pcap_hdr(v.b, q).is_some());
    let dot11_before = DOT11_IP_OFFSETS.iter().any(|&o| {
        i.checked_sub(16 + o)
            .is_some_and(|q| dot11_ip(v.b, q + 16) == Some(o) && pcap_hdr(v.b, q).is_some())
    });
    if !(pcap_before(30)
        || pcap_before(16)
        || dot11_before
        || i.checked_sub(14).is_some_and(|e| v.ether_ok(e).is_some())
        || v.ip_ok(i).is_some())
    {
        return None;
    }
    let mut x = i.saturating_sub(LEAD + LOOKBACK);
    while x <= i {
        match v.carve(x) {
            Some((owner, Some(ip), _)) if ip.at == i => return Some((owner, ip)),
            Some((_, _, n)) => x += n.max(1),
            None => x += 1,
        }
    }
    None
}

/// Records for one carved packet, positions relative to the view.
fn emit(v: &View<'_>, owner: &Owner, ip: &Ip, push: &mut dyn FnMut(Record)) {
    let b = v.b;
    // BE documents the fields at the record's data for pcap records
    let at = match owner {
        Owner::PcapEther(q) | Owner::PcapRaw(q) | Owner::Pcap80211(q) => q + 16,
        _ => ip.at,
    };
    if let Owner::Ether(e) = owner {
        for (m, what) in [
            (&b[*e..e + 6], "(ether_dhost)"),
            (&b[e + 6..e + 12], "(ether_shost)"),
        ] {
            if !invalid_mac(m) {
                push(rec(
                    "ether",
                    *e,
                    mac_string(m).into_bytes(),
                    what.as_bytes().to_vec(),
                ));
            }
        }
    }
    let (sl, dl) = if matches!(ip.ttl, 32 | 64 | 128 | 255) {
        ("L", "R")
    } else {
        ("R", "L")
    };
    let ck = if ip.cksum_ok(b) {
        "cksum-ok"
    } else {
        "cksum-bad"
    };
    let name = if ip.v6 { "ip6_hdr" } else { "ip" };
    let src = ip_string(ip.src(b));
    let dst = ip_string(ip.dst(b));
    push(rec(
        "ip",
        at,
        src.clone().into_bytes(),
        format!("struct {name} {sl} (src) {ck}").into_bytes(),
    ));
    push(rec(
        "ip",
        at,
        dst.clone().into_bytes(),
        format!("struct {name} {dl} (dst) {ck}").into_bytes(),
    ));
    if let Some((sp, dp)) = ports(b, ip) {
        let proto = if ip.nxt == 6 { "TCP" } else { "UDP" };
        push(rec(
            "tcp",
            at,
            format!("{src} {sp} -> {dst} {dp} ({proto})").into_bytes(),
            format!(" Size: {}", ip.len()).into_bytes(),
        ));
    } else if ip.v6 && ip.nxt == 58 && b.get(ip.at + 40..ip.at + 48).is_some() {
        push(rec(
            "tcp",
            at,
            format!("{src} -> {dst} (ICMPv6)").into_bytes(),
            format!(" Type: {} Code: {}", b[ip.at + 40], b[ip.at + 41]).into_bytes(),
        ));
    }
    let ethertype: [u8; 2] = if ip.v6 { [0x86, 0xdd] } else { [0x08, 0x00] };
    let (pos, pkt) = match *owner {
        Owner::PcapEther(q) => {
            let cap = pcap_hdr(b, q).map_or(0, |h| h.cap);
            (q, b[q..q + 16 + cap].to_vec())
        }
        Owner::PcapRaw(q) => {
            let cap = pcap_hdr(b, q).map_or(0, |h| h.cap);
            let mut p = b[q..q + 8].to_vec();
            for field in [q + 8, q + 12] {
                let n = le32(b, field).unwrap_or(0) + 14;
                p.extend_from_slice(&n.to_le_bytes());
            }
            p.extend_from_slice(&[0; 12]);
            p.extend_from_slice(&ethertype);
            p.extend_from_slice(&b[q + 16..q + 16 + cap]);
            (q, p)
        }
        Owner::Ether(e) => {
            let n = (14 + ip.len()).min(b.len() - e);
            (e, pcap_record(&[], &b[e..e + n]))
        }
        Owner::Pcap80211(q) => {
            // carved with its link type: packets_80211.pcap
            let cap = pcap_hdr(b, q).map_or(0, |h| h.cap);
            push(rec(PCAP_80211, q, b[q..q + 16 + cap].to_vec(), Vec::new()));
            return;
        }
        Owner::Opaque => return,
        Owner::Bare => {
            let n = ip.len().min(b.len() - ip.at);
            let mut hdr = [0u8; 14];
            hdr[12..].copy_from_slice(&ethertype);
            (ip.at, pcap_record(&hdr, &b[ip.at..ip.at + n]))
        }
    };
    push(rec(crate::records::PCAP_RECORDER, pos, pkt, Vec::new()));
}

/// A pcap record with time stamp 0 holding `head` then `data`.
fn pcap_record(head: &[u8], data: &[u8]) -> Vec<u8> {
    let n = (head.len() + data.len()) as u32;
    let mut p = Vec::with_capacity(16 + n as usize);
    p.extend_from_slice(&[0; 8]);
    p.extend_from_slice(&n.to_le_bytes());
    p.extend_from_slice(&n.to_le_bytes());
    p.extend_from_slice(head);
    p.extend_from_slice(data);
    p
}

fn rec(recorder: &'static str, pos: usize, feature: Vec<u8>, context: Vec<u8>) -> Record {
    Record {
        recorder,
        pos,
        feature,
        context,
    }
}

/// Whether `i` may start an IP header: `0x45`, fragment field 0 or DF,
/// TCP/UDP; or version 6, payload length below 8448, TCP/UDP/ICMPv6.
fn candidate(b: &[u8], i: usize) -> bool {
    match b[i] {
        0x45 => matches!(b.get(i + 6), Some(0 | 0x40)) && matches!(b.get(i + 9), Some(6 | 17)),
        x if x >> 4 == 6 => {
            matches!(b.get(i + 4), Some(0..=0x20)) && matches!(b.get(i + 6), Some(6 | 17 | 58))
        }
        _ => false,
    }
}

/// Positions tested per block by the vectorisable prefilter.
const BLK: usize = 64;

/// Whether some position of the block at `a[0..BLK]` may start an IP
/// header (`a` holds 9 bytes more). Branch-free so that it compiles to
/// vector compares.
#[inline(always)]
fn block_has_candidate(a: &[u8; BLK + 9]) -> bool {
    let mut acc = 0u8;
    for j in 0..BLK {
        let x = a[j];
        let y4 = a[j + 4];
        let y6 = a[j + 6];
        let y9 = a[j + 9];
        let v4 = (x == 0x45) & ((y6 & 0xbf) == 0) & ((y9 == 6) | (y9 == 17));
        let v6 = ((x & 0xf0) == 0x60) & (y4 <= 0x20) & ((y6 == 6) | (y6 == 17) | (y6 == 58));
        acc |= u8::from(v4 | v6);
    }
    acc != 0
}

/// Calls `f` for every candidate IP header in `range`.
fn candidates(b: &[u8], range: Range<usize>, mut f: impl FnMut(usize)) {
    let mut i = range.start;
    while i + BLK <= range.end {
        let Some(a) = b.get(i..i + BLK + 9) else {
            break;
        };
        let a: &[u8; BLK + 9] = a.try_into().unwrap_or(&[0; BLK + 9]);
        if block_has_candidate(a) {
            for j in i..i + BLK {
                if candidate(b, j) {
                    f(j);
                }
            }
        }
        i += BLK;
    }
    while i < range.end {
        if candidate(b, i) {
            f(i);
        }
        i += 1;
    }
}

/// The `net` structure scanner.
pub fn scan(buf: &[u8], own: Range<usize>, out: &mut Vec<Record>) {
    let len = buf.len();
    // pcap file headers
    let hs = own.start.min(len);
    let he = (own.end + PCAP_FILE_MAGIC.len() - 1).min(len);
    for k in memchr::memmem::find_iter(&buf[hs..he], &PCAP_FILE_MAGIC) {
        let p = hs + k;
        // BE looks at no structure within 40 bytes of the end of the data
        if p < own.end && (len - p >= WINDOW || p + MIN_PACKET_BYTES < len) {
            out.push(rec(
                "ip",
                p,
                b"0xd4,0xc3,0xb2,0xa1".to_vec(),
                b"TCPDUMP file".to_vec(),
            ));
        }
    }
    // 802.11 captures: records chained from a file header up to a window
    // before the owned range
    let ws = own.start.saturating_sub(crate::records::WINDOW).min(len);
    for k in memchr::memmem::find_iter(&buf[ws..he], &PCAP_FILE_MAGIC) {
        dot11_records(buf, ws + k, &own, out);
    }
    // ARP requests and replies in Ethernet frames
    arp(buf, &own, out);
    // IP headers up to LEAD bytes past the owned range start structures in it
    let end = (own.end + LEAD).min(len);
    candidates(buf, own.start.min(end)..end, |p| {
        if sanity_cheap(buf, p) {
            decide_at(buf, p, &own, out);
        }
    });
}

/// A quick reject before building the view.
fn sanity_cheap(b: &[u8], p: usize) -> bool {
    if b[p] == 0x45 {
        matches!(b.get(p + 6..p + 8), Some([0, 0] | [0x40, 0]))
    } else {
        true
    }
}

fn decide_at(buf: &[u8], p: usize, own: &Range<usize>, out: &mut Vec<Record>) {
    let lo = p.saturating_sub(READ_BEFORE);
    let limit = p.saturating_sub(LEAD) + WINDOW;
    let hi = limit.min(buf.len());
    let v = View {
        b: &buf[lo..hi],
        end_is_true: buf.len() < limit,
    };
    if let Some((owner, ip)) = decide(&v, p - lo) {
        emit(&v, &owner, &ip, &mut |mut r| {
            r.pos += lo;
            if own.contains(&r.pos) {
                out.push(r);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A TCP/IPv4 packet with a right header checksum.
    pub(crate) fn ipv4_tcp(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, ttl: u8) -> Vec<u8> {
        let payload = b"GET / HTTP/1.1\r\n\r\n";
        let tot = 40 + payload.len();
        let mut p = vec![
            0x45,
            0,
            (tot >> 8) as u8,
            tot as u8,
            0x12,
            0x34,
            0x40,
            0,
            ttl,
            6,
            0,
            0,
        ];
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        let c = !fold(sum16(&p[..20], 0));
        p[10..12].copy_from_slice(&c.to_be_bytes());
        p.extend_from_slice(&sport.to_be_bytes());
        p.extend_from_slice(&dport.to_be_bytes());
        p.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 0x10, 0, 0, 0, 0, 0]);
        p.extend_from_slice(payload);
        p
    }

    /// A UDP/IPv6 packet with a right checksum.
    pub(crate) fn ipv6_udp(src: [u8; 16], dst: [u8; 16]) -> Vec<u8> {
        let data = b"hello, world";
        let plen = 8 + data.len();
        let mut p = vec![0x60, 0, 0, 0, 0, plen as u8, 17, 64];
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        p.extend_from_slice(&[0x30, 0x39, 0x00, 0x35, 0, plen as u8, 0, 0]);
        p.extend_from_slice(data);
        let mut s = sum16(&p[8..40], 0) + plen as u64 + 17;
        s = sum16(&p[40..], s);
        let c = !fold(s);
        p[46..48].copy_from_slice(&c.to_be_bytes());
        p
    }

    fn run(buf: &[u8]) -> Vec<Record> {
        let mut v = Vec::new();
        scan(buf, 0..buf.len(), &mut v);
        v
    }

    fn lines(r: &[Record], name: &str) -> Vec<(usize, String, String)> {
        r.iter()
            .filter(|r| r.recorder == name)
            .map(|r| {
                (
                    r.pos,
                    String::from_utf8_lossy(&r.feature).into_owned(),
                    String::from_utf8_lossy(&r.context).into_owned(),
                )
            })
            .collect()
    }

    fn s(x: &str) -> String {
        x.to_string()
    }

    #[test]
    fn bare_ipv4_packet() {
        let mut buf = vec![0x11u8; 100];
        let pkt = ipv4_tcp([192, 168, 0, 91], [192, 168, 0, 55], 2239, 80, 128);
        buf.extend_from_slice(&pkt);
        buf.extend_from_slice(&[0x22; 100]);
        let r = run(&buf);
        assert_eq!(
            lines(&r, "ip"),
            [
                (100, s("192.168.0.91"), s("struct ip L (src) cksum-ok")),
                (100, s("192.168.0.55"), s("struct ip R (dst) cksum-ok"))
            ]
        );
        assert_eq!(
            lines(&r, "tcp"),
            [(
                100,
                s("192.168.0.91 2239 -> 192.168.0.55 80 (TCP)"),
                s(" Size: 58")
            )]
        );
        assert!(lines(&r, "ether").is_empty());
        let p: Vec<_> = r.iter().filter(|r| r.recorder == "packets").collect();
        assert_eq!(p.len(), 1);
        let f = &p[0].feature;
        assert_eq!(&f[..8], &[0; 8]);
        assert_eq!(le32(f, 8), Some(14 + 58));
        assert_eq!(le32(f, 12), Some(14 + 58));
        assert_eq!(&f[16..28], &[0; 12]);
        assert_eq!(&f[28..30], &[8, 0]);
        assert_eq!(&f[30..], &pkt[..]);
    }

    #[test]
    fn bad_checksum_or_addresses_or_port0_reject() {
        let mut pkt = ipv4_tcp([192, 168, 0, 91], [192, 168, 0, 55], 2239, 80, 64);
        pkt[10] ^= 1;
        let mut buf = vec![0u8; 64];
        buf.extend_from_slice(&pkt);
        buf.extend_from_slice(&[0; 64]);
        assert!(run(&buf).is_empty());
        for (src, sp) in [
            ([127, 0, 0, 1], 80),
            ([10, 1, 2, 0], 80),
            ([10, 1, 2, 3], 0),
        ] {
            let pkt = ipv4_tcp(src, [192, 168, 0, 55], sp, 80, 64);
            let mut buf = vec![0u8; 64];
            buf.extend_from_slice(&pkt);
            buf.extend_from_slice(&[0; 64]);
            assert!(run(&buf).is_empty(), "{src:?} {sp}");
        }
    }

    #[test]
    fn ethernet_frame() {
        let mut buf = vec![0x33u8; 50];
        let dmac = [0x00, 0x0c, 0x29, 0x26, 0xbb, 0xcd];
        let smac = [0x00, 0x50, 0x56, 0xe0, 0xfe, 0x24];
        buf.extend_from_slice(&dmac);
        buf.extend_from_slice(&smac);
        buf.extend_from_slice(&[8, 0]);
        // private-range check does not apply to Ethernet frames: use 10.0.0.1
        let pkt = ipv4_tcp([10, 0, 0, 1], [10, 0, 0, 2], 1025, 443, 63);
        buf.extend_from_slice(&pkt);
        buf.extend_from_slice(&[0x33; 50]);
        let r = run(&buf);
        assert_eq!(
            lines(&r, "ether"),
            [
                (50, s("00:0C:29:26:BB:CD"), s("(ether_dhost)")),
                (50, s("00:50:56:E0:FE:24"), s("(ether_shost)"))
            ]
        );
        assert_eq!(
            lines(&r, "ip"),
            [
                (64, s("10.0.0.1"), s("struct ip R (src) cksum-ok")),
                (64, s("10.0.0.2"), s("struct ip L (dst) cksum-ok"))
            ]
        );
        let p: Vec<_> = r.iter().filter(|r| r.recorder == "packets").collect();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].pos, 50);
        assert_eq!(&p[0].feature[16..], &buf[50..64 + pkt.len()]);
    }

    #[test]
    fn ipv6_udp_and_formatting() {
        let src = [
            0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0xc4, 0x6b, 0, 0xe4, 0x0d, 0x55, 0x62, 0xb1,
        ];
        let dst = [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 3];
        let pkt = ipv6_udp(src, dst);
        let mut buf = vec![0x01u8; 33];
        buf.extend_from_slice(&pkt);
        buf.extend_from_slice(&[0x01; 60]);
        let r = run(&buf);
        assert_eq!(
            lines(&r, "ip"),
            [
                (
                    33,
                    s("fe80::c46b:e4:d55:62b1"),
                    s("struct ip6_hdr L (src) cksum-ok")
                ),
                (33, s("ff02::1:3"), s("struct ip6_hdr R (dst) cksum-ok"))
            ]
        );
        assert_eq!(
            lines(&r, "tcp"),
            [(
                33,
                s("fe80::c46b:e4:d55:62b1 12345 -> ff02::1:3 53 (UDP)"),
                s(" Size: 60")
            )]
        );
        let p: Vec<_> = r.iter().filter(|r| r.recorder == "packets").collect();
        assert_eq!(&p[0].feature[28..30], &[0x86, 0xdd]);
        // a wrong checksum: nothing
        let mut bad = buf.clone();
        bad[33 + 50] ^= 0x40;
        assert!(run(&bad).is_empty());
    }

    #[test]
    fn inet_ntop_forms() {
        let f = |a: [u16; 8]| {
            let b: Vec<u8> = a.iter().flat_map(|w| w.to_be_bytes()).collect();
            ip_string(&b)
        };
        assert_eq!(f([0; 8]), "::");
        assert_eq!(f([0, 0, 0, 0, 0, 0, 0, 1]), "::1");
        assert_eq!(f([0x2001, 0xdb8, 0, 0, 1, 0, 0, 1]), "2001:db8::1:0:0:1");
        assert_eq!(f([0x2001, 0xdb8, 0, 1, 1, 1, 1, 1]), "2001:db8:0:1:1:1:1:1");
        assert_eq!(f([0, 0, 0, 0, 0, 0xffff, 0x0102, 0x0304]), "::ffff:1.2.3.4");
        assert_eq!(f([0, 0, 0, 0, 0, 0, 0x0102, 0x0304]), "::1.2.3.4");
        assert_eq!(f([0xfe80, 0, 0, 0, 0, 0, 0, 0]), "fe80::");
    }

    #[test]
    fn pcap_records_raw_and_ethernet() {
        let pkt = ipv4_tcp([192, 168, 1, 10], [192, 168, 1, 20], 5000, 80, 64);
        let mut frame = vec![
            0, 0x22, 0x5f, 0x3f, 0x98, 0x91, 0, 0x22, 0x5f, 0x3f, 0x98, 0x92, 8, 0,
        ];
        frame.extend_from_slice(&pkt);
        let mut file = PCAP_FILE_MAGIC.to_vec();
        file.extend_from_slice(&[0; 8]);
        file.extend_from_slice(&65535u32.to_le_bytes());
        file.extend_from_slice(&1u32.to_le_bytes());
        let rec_hdr = |n: usize, t: u32| {
            let mut h = t.to_le_bytes().to_vec();
            h.extend_from_slice(&7u32.to_le_bytes());
            h.extend_from_slice(&(n as u32).to_le_bytes());
            h.extend_from_slice(&(n as u32).to_le_bytes());
            h
        };
        file.extend_from_slice(&rec_hdr(frame.len(), 1_300_000_000));
        file.extend_from_slice(&frame);
        let second = file.len();
        file.extend_from_slice(&rec_hdr(pkt.len(), 1_300_000_001));
        file.extend_from_slice(&pkt);
        let r = run(&file);
        assert_eq!(
            lines(&r, "ip"),
            [
                (0, s("0xd4,0xc3,0xb2,0xa1"), s("TCPDUMP file")),
                (40, s("192.168.1.10"), s("struct ip L (src) cksum-ok")),
                (40, s("192.168.1.20"), s("struct ip R (dst) cksum-ok")),
                (
                    second + 16,
                    s("192.168.1.10"),
                    s("struct ip L (src) cksum-ok")
                ),
                (
                    second + 16,
                    s("192.168.1.20"),
                    s("struct ip R (dst) cksum-ok")
                ),
            ]
        );
        assert!(lines(&r, "ether").is_empty());
        let p: Vec<_> = r.iter().filter(|r| r.recorder == "packets").collect();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].feature, file[24..second]);
        // the raw packet gets a forged Ethernet header, lengths + 14
        assert_eq!(&p[1].feature[..8], &file[second..second + 8]);
        assert_eq!(le32(&p[1].feature, 8), Some(pkt.len() as u32 + 14));
        assert_eq!(
            &p[1].feature[16..30],
            &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0]
        );
        assert_eq!(&p[1].feature[30..], &pkt[..]);
    }

    /// A capture with snap length 60: each record holds the first 60 bytes
    /// of a longer frame; every record is still carved (BE skips record by
    /// record, never into the Ethernet frame's announced length).
    #[test]
    fn snaplen_truncated_capture() {
        let mut file = PCAP_FILE_MAGIC.to_vec();
        file.extend_from_slice(&[0; 8]);
        file.extend_from_slice(&60u32.to_le_bytes());
        file.extend_from_slice(&1u32.to_le_bytes());
        let mut starts = Vec::new();
        for k in 0..4u8 {
            let mut pkt = ipv4_tcp(
                [10, 0, 0, 1 + k],
                [10, 0, 1, 2],
                3000 + u16::from(k),
                80,
                64,
            );
            // announce 600 bytes: the header checksum is over the new length
            pkt[2..4].copy_from_slice(&600u16.to_be_bytes());
            pkt[10..12].copy_from_slice(&[0, 0]);
            let c = !fold(sum16(&pkt[..20], 0));
            pkt[10..12].copy_from_slice(&c.to_be_bytes());
            let mut frame = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 8, 0];
            frame.extend_from_slice(&pkt);
            frame.resize(60, 0);
            starts.push(file.len());
            file.extend_from_slice(&(1_300_000_000u32 + u32::from(k)).to_le_bytes());
            file.extend_from_slice(&0u32.to_le_bytes());
            file.extend_from_slice(&60u32.to_le_bytes());
            file.extend_from_slice(&614u32.to_le_bytes());
            file.extend_from_slice(&frame);
        }
        // room for the last packet's announced length
        file.extend_from_slice(&[0x5a; 700]);
        let r = run(&file);
        let pk: Vec<usize> = r
            .iter()
            .filter(|r| r.recorder == "packets")
            .map(|r| r.pos)
            .collect();
        // the last record is not followed by a record header: its frame is
        // carved as a bare Ethernet frame
        assert_eq!(pk, [starts[0], starts[1], starts[2], starts[3] + 16]);
        assert_eq!(lines(&r, "tcp").len(), 4);
    }

    #[test]
    fn owned_range_and_hostile_input() {
        let pkt = ipv4_tcp([192, 168, 0, 91], [192, 168, 0, 55], 2239, 80, 128);
        let mut buf = vec![0x11u8; 100];
        buf.extend_from_slice(&pkt);
        buf.extend_from_slice(&[0x22; 100]);
        let mut v = Vec::new();
        scan(&buf, 0..100, &mut v);
        assert!(v.is_empty());
        scan(&buf, 100..101, &mut v);
        assert_eq!(v.len(), 4);
        for cut in 0..buf.len() {
            run(&buf[..cut]);
            run(&buf[cut..]);
        }
        let mut x = 7u64;
        let mut junk = Vec::new();
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            junk.push(x as u8);
        }
        assert!(run(&junk).is_empty());
    }

    #[test]
    fn swar_matches_scalar() {
        let mut x = 99u64;
        let mut b = Vec::new();
        for _ in 0..50_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // bias towards interesting bytes
            b.push([0x45, 0x60, 0x6a, 6, 17, 58, 0, 0x40, x as u8][(x >> 40) as usize % 9]);
        }
        for r in [0..b.len(), 3..b.len() - 5, 10..10, 7..30] {
            let mut fast = Vec::new();
            candidates(&b, r.clone(), |i| fast.push(i));
            let slow: Vec<usize> = r.filter(|&i| candidate(&b, i)).collect();
            assert_eq!(fast, slow);
        }
    }
}
