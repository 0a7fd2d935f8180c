//! A small PE32+ reader: exactly what `cargo wsk build` needs to check that a
//! linked image is a loadable kernel driver.
//!
//! Format reference: Microsoft's "PE Format" specification
//! (<https://learn.microsoft.com/windows/win32/debug/pe-format>).

use std::fmt::Write as _;

/// `IMAGE_FILE_MACHINE_AMD64`.
pub const MACHINE_AMD64: u16 = 0x8664;
/// `IMAGE_FILE_MACHINE_ARM64`.
pub const MACHINE_ARM64: u16 = 0xAA64;
/// `IMAGE_SUBSYSTEM_NATIVE`.
const SUBSYSTEM_NATIVE: u16 = 1;
/// `IMAGE_NT_OPTIONAL_HDR64_MAGIC`.
const PE32_PLUS: u16 = 0x20B;
/// `IMAGE_DLLCHARACTERISTICS_NX_COMPAT`.
const DLL_NX_COMPAT: u16 = 0x0100;
/// `IMAGE_SCN_MEM_EXECUTE`.
const SCN_MEM_EXECUTE: u32 = 0x2000_0000;
/// `IMAGE_SCN_MEM_WRITE`.
const SCN_MEM_WRITE: u32 = 0x8000_0000;

/// Data directory indices used here.
const DIR_IMPORT: usize = 1;
const DIR_TLS: usize = 9;
const DIR_DELAY_IMPORT: usize = 13;

/// The DLLs a driver in this project may import from.
pub const ALLOWED_IMPORTS: &[&str] = &["ntoskrnl.exe", "netio.sys"];

/// One section header.
#[derive(Debug, Clone)]
pub struct Section {
    /// The section name (`.text`, …).
    pub name: String,
    /// Its relative virtual address.
    pub rva: u32,
    /// Its size in memory.
    pub virtual_size: u32,
    /// Where its data starts in the file.
    pub raw_offset: u32,
    /// Its size in the file.
    pub raw_size: u32,
    /// `IMAGE_SCN_*` flags.
    pub characteristics: u32,
}

/// Functions imported from one DLL (ordinal imports are written `#N`).
#[derive(Debug, Clone)]
pub struct Import {
    /// The DLL name as written in the image (`ntoskrnl.exe`).
    pub dll: String,
    /// The imported names, in import-table order.
    pub functions: Vec<String>,
}

/// The facts read from a PE32+ image.
#[derive(Debug, Clone)]
pub struct Image {
    /// `IMAGE_FILE_MACHINE_*`.
    pub machine: u16,
    /// The entry point RVA.
    pub entry: u32,
    /// `IMAGE_SUBSYSTEM_*`.
    pub subsystem: u16,
    /// `IMAGE_DLLCHARACTERISTICS_*`.
    pub dll_characteristics: u16,
    /// The header checksum as stored.
    pub checksum: u32,
    /// The checksum computed from the file.
    pub computed_checksum: u32,
    /// The section table.
    pub sections: Vec<Section>,
    /// The import directory, one entry per DLL.
    pub imports: Vec<Import>,
    /// Whether a TLS directory is present.
    pub has_tls: bool,
    /// Whether delay-load imports are present.
    pub has_delay_imports: bool,
    /// The file size in bytes.
    pub file_size: usize,
}

fn u16_at(b: &[u8], off: usize) -> Result<u16, String> {
    b.get(off..off + 2)
        .map(|s| u16::from_le_bytes([s[0], s[1]]))
        .ok_or_else(|| format!("truncated image: u16 at {off:#x}"))
}

fn u32_at(b: &[u8], off: usize) -> Result<u32, String> {
    b.get(off..off + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or_else(|| format!("truncated image: u32 at {off:#x}"))
}

fn u64_at(b: &[u8], off: usize) -> Result<u64, String> {
    let lo = u64::from(u32_at(b, off)?);
    let hi = u64::from(u32_at(b, off + 4)?);
    Ok(lo | (hi << 32))
}

fn usize_of(v: u32) -> usize {
    usize::try_from(v).expect("usize holds u32 on supported hosts")
}

/// The PE checksum (the algorithm of `CheckSumMappedFile`): 16-bit
/// one's-complement-style sum of the file with the checksum field taken as
/// zero, plus the file length.
///
/// # Panics
///
/// Never: the sum is folded to 16 bits before the conversion.
#[must_use]
pub fn pe_checksum(b: &[u8], checksum_field: usize) -> u32 {
    let mut sum: u64 = 0;
    for (i, pair) in b.chunks(2).enumerate() {
        let off = i * 2;
        if off == checksum_field || off == checksum_field + 2 {
            continue;
        }
        let word = u64::from(pair[0]) | (u64::from(pair.get(1).copied().unwrap_or(0)) << 8);
        sum += word;
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    sum = (sum & 0xFFFF) + (sum >> 16);
    // Truncation is the algorithm: the file length is added modulo 2^32.
    #[allow(clippy::cast_possible_truncation)]
    let len = b.len() as u32;
    u32::try_from(sum)
        .expect("folded to 16 bits")
        .wrapping_add(len)
}

impl Image {
    /// Parses a PE32+ image.
    ///
    /// # Errors
    ///
    /// What is missing or malformed (signatures, a truncated header, a
    /// 32-bit image, an import table outside the file).
    pub fn parse(b: &[u8]) -> Result<Image, String> {
        if b.get(0..2) != Some(b"MZ") {
            return Err("no MZ signature: not a PE image".into());
        }
        let pe = usize_of(u32_at(b, 0x3C)?);
        if b.get(pe..pe + 4) != Some(b"PE\0\0") {
            return Err("no PE signature".into());
        }
        let coff = pe + 4;
        let machine = u16_at(b, coff)?;
        let nsections = usize::from(u16_at(b, coff + 2)?);
        let opt_size = usize::from(u16_at(b, coff + 16)?);
        let opt = coff + 20;
        let optional_magic = u16_at(b, opt)?;
        if optional_magic != PE32_PLUS {
            return Err(format!(
                "optional header magic {optional_magic:#x}: not PE32+ (64-bit)"
            ));
        }
        let entry = u32_at(b, opt + 16)?;
        let checksum_field = opt + 64;
        let checksum = u32_at(b, checksum_field)?;
        let subsystem = u16_at(b, opt + 68)?;
        let dll_characteristics = u16_at(b, opt + 70)?;
        let ndirs = usize_of(u32_at(b, opt + 108)?);
        let dir = |i: usize| -> Result<(u32, u32), String> {
            if i >= ndirs {
                return Ok((0, 0));
            }
            Ok((u32_at(b, opt + 112 + i * 8)?, u32_at(b, opt + 116 + i * 8)?))
        };

        let mut sections = Vec::with_capacity(nsections);
        let sh = opt + opt_size;
        for i in 0..nsections {
            let s = sh + i * 40;
            let raw_name = b
                .get(s..s + 8)
                .ok_or_else(|| "truncated section table".to_string())?;
            let name = String::from_utf8_lossy(raw_name)
                .trim_end_matches('\0')
                .to_string();
            sections.push(Section {
                name,
                virtual_size: u32_at(b, s + 8)?,
                rva: u32_at(b, s + 12)?,
                raw_size: u32_at(b, s + 16)?,
                raw_offset: u32_at(b, s + 20)?,
                characteristics: u32_at(b, s + 36)?,
            });
        }

        let mut image = Image {
            machine,
            entry,
            subsystem,
            dll_characteristics,
            checksum,
            computed_checksum: pe_checksum(b, checksum_field),
            sections,
            imports: Vec::new(),
            has_tls: dir(DIR_TLS)?.0 != 0,
            has_delay_imports: dir(DIR_DELAY_IMPORT)?.0 != 0,
            file_size: b.len(),
        };
        let (import_rva, _) = dir(DIR_IMPORT)?;
        if import_rva != 0 {
            image.imports = image.read_imports(b, import_rva)?;
        }
        Ok(image)
    }

    /// Maps an RVA to a file offset through the section table.
    fn offset_of(&self, rva: u32) -> Result<usize, String> {
        for s in &self.sections {
            let span = s.virtual_size.max(s.raw_size);
            if rva >= s.rva && rva - s.rva < span {
                let delta = rva - s.rva;
                if delta >= s.raw_size {
                    return Err(format!("RVA {rva:#x} lies in uninitialised data"));
                }
                return Ok(usize_of(s.raw_offset) + usize_of(delta));
            }
        }
        Err(format!("RVA {rva:#x} is outside every section"))
    }

    fn c_string(&self, b: &[u8], rva: u32) -> Result<String, String> {
        let off = self.offset_of(rva)?;
        let tail = b.get(off..).ok_or("string outside the file")?;
        let end = tail
            .iter()
            .position(|&c| c == 0)
            .ok_or("unterminated string")?;
        Ok(String::from_utf8_lossy(&tail[..end]).into_owned())
    }

    fn read_imports(&self, b: &[u8], rva: u32) -> Result<Vec<Import>, String> {
        let mut out = Vec::new();
        let mut desc = self.offset_of(rva)?;
        loop {
            let lookup = u32_at(b, desc)?;
            let name = u32_at(b, desc + 12)?;
            let iat = u32_at(b, desc + 16)?;
            if lookup == 0 && name == 0 && iat == 0 {
                break;
            }
            let dll = self.c_string(b, name)?;
            let mut functions = Vec::new();
            let mut thunk = self.offset_of(if lookup != 0 { lookup } else { iat })?;
            loop {
                let entry = u64_at(b, thunk)?;
                if entry == 0 {
                    break;
                }
                if entry & (1 << 63) != 0 {
                    functions.push(format!("#{}", entry & 0xFFFF));
                } else {
                    let hint_name = u32::try_from(entry & 0x7FFF_FFFF).expect("31 bits");
                    functions.push(self.c_string(b, hint_name + 2)?);
                }
                thunk += 8;
            }
            out.push(Import { dll, functions });
            desc += 20;
        }
        Ok(out)
    }

    /// Every way this image falls short of a loadable kernel driver for
    /// `machine`; empty when it passes.
    #[must_use]
    pub fn driver_problems(&self, machine: u16) -> Vec<String> {
        let mut p = Vec::new();
        if self.machine != machine {
            p.push(format!(
                "machine is {} ({:#06x}), expected {}",
                machine_name(self.machine),
                self.machine,
                machine_name(machine)
            ));
        }
        if self.subsystem != SUBSYSTEM_NATIVE {
            p.push(format!(
                "subsystem is {}, expected 1 (NATIVE): link with /SUBSYSTEM:NATIVE",
                self.subsystem
            ));
        }
        if self.entry == 0 {
            p.push("entry point is 0: link with /ENTRY:DriverEntry".into());
        } else if !self.sections.iter().any(|s| {
            s.characteristics & SCN_MEM_EXECUTE != 0
                && self.entry >= s.rva
                && self.entry - s.rva < s.virtual_size.max(s.raw_size)
        }) {
            p.push(format!(
                "entry point {:#x} is not in an executable section",
                self.entry
            ));
        }
        if self.imports.is_empty() {
            p.push("no import directory".into());
        }
        for imp in &self.imports {
            if !ALLOWED_IMPORTS
                .iter()
                .any(|a| a.eq_ignore_ascii_case(&imp.dll))
            {
                p.push(format!(
                    "imports from {} ({}): only {} are allowed",
                    imp.dll,
                    imp.functions.join(", "),
                    ALLOWED_IMPORTS.join(" and ")
                ));
            }
        }
        if self.has_tls {
            p.push("has a TLS directory: kernel images cannot use thread-local storage".into());
        }
        if self.has_delay_imports {
            p.push("has delay-load imports: the kernel loader does not support them".into());
        }
        if self.checksum != self.computed_checksum {
            p.push(format!(
                "header checksum {:#x} != computed {:#x}: link with /RELEASE",
                self.checksum, self.computed_checksum
            ));
        }
        if self.dll_characteristics & DLL_NX_COMPAT == 0 {
            p.push("not marked NX-compatible".into());
        }
        for s in &self.sections {
            if s.characteristics & (SCN_MEM_EXECUTE | SCN_MEM_WRITE)
                == SCN_MEM_EXECUTE | SCN_MEM_WRITE
            {
                p.push(format!("section {} is writable and executable", s.name));
            }
        }
        p
    }

    /// One line: machine, subsystem, entry, sections, import counts.
    #[must_use]
    pub fn summary(&self) -> String {
        let mut s = format!(
            "{}, subsystem {}, entry {:#x}, checksum {:#x}, sections",
            machine_name(self.machine),
            if self.subsystem == SUBSYSTEM_NATIVE {
                "NATIVE".to_string()
            } else {
                self.subsystem.to_string()
            },
            self.entry,
            self.checksum
        );
        for sec in &self.sections {
            let _ = write!(s, " {}", sec.name);
        }
        s.push_str(", imports");
        for imp in &self.imports {
            let _ = write!(s, " {} ({})", imp.dll, imp.functions.len());
        }
        s
    }
}

/// A readable machine name.
#[must_use]
pub fn machine_name(m: u16) -> &'static str {
    match m {
        MACHINE_AMD64 => "AMD64",
        MACHINE_ARM64 => "ARM64",
        0x014C => "I386",
        _ => "unknown machine",
    }
}

/// Hand-made PE32+ images for tests (here and in [`crate::imports`]).
#[cfg(test)]
pub(crate) mod fixture {
    use super::{DLL_NX_COMPAT, PE32_PLUS, SUBSYSTEM_NATIVE, pe_checksum};

    fn put32(b: &mut [u8], off: usize, v: u32) {
        b[off..off + 4].copy_from_slice(&v.to_le_bytes());
    }

    fn rva(section_offset: usize) -> u32 {
        u32::try_from(0x1000 + section_offset).unwrap()
    }

    /// A minimal, valid PE32+ driver image: one `.text` section (RVA
    /// 0x1000, file offset 0x200, 4 KiB) holding a `ret`, the import
    /// directory for `imports` (DLL, function names) and the strings.
    pub(crate) fn driver(machine: u16, imports: &[(&str, &[&str])]) -> Vec<u8> {
        const FILE: usize = 0x200; // file offset of the section
        let mut b = vec![0u8; FILE + 0x1000];
        b[0..2].copy_from_slice(b"MZ");
        put32(&mut b, 0x3C, 0x40);
        b[0x40..0x44].copy_from_slice(b"PE\0\0");
        let coff = 0x44;
        b[coff..coff + 2].copy_from_slice(&machine.to_le_bytes());
        b[coff + 2..coff + 4].copy_from_slice(&1u16.to_le_bytes());
        b[coff + 16..coff + 18].copy_from_slice(&240u16.to_le_bytes());
        let opt = coff + 20;
        b[opt..opt + 2].copy_from_slice(&PE32_PLUS.to_le_bytes());
        put32(&mut b, opt + 16, 0x1000);
        b[opt + 68..opt + 70].copy_from_slice(&SUBSYSTEM_NATIVE.to_le_bytes());
        b[opt + 70..opt + 72].copy_from_slice(&DLL_NX_COMPAT.to_le_bytes());
        put32(&mut b, opt + 108, 16);
        let descriptors = 0x10;
        put32(&mut b, opt + 112 + 8, rva(descriptors));
        put32(
            &mut b,
            opt + 116 + 8,
            u32::try_from(20 * (imports.len() + 1)).unwrap(),
        );
        let sh = opt + 240;
        b[sh..sh + 5].copy_from_slice(b".text");
        put32(&mut b, sh + 8, 0x1000);
        put32(&mut b, sh + 12, 0x1000);
        put32(&mut b, sh + 16, 0x1000);
        put32(&mut b, sh + 20, u32::try_from(FILE).unwrap());
        put32(&mut b, sh + 36, 0x6000_0020);
        b[FILE] = 0xC3;
        // Lookup tables from 0x200, strings from 0x600 (section offsets).
        let (mut lookup, mut strings) = (0x200, 0x600);
        for (i, (dll, functions)) in imports.iter().enumerate() {
            let d = FILE + descriptors + 20 * i;
            put32(&mut b, d, rva(lookup));
            put32(&mut b, d + 12, rva(strings));
            put32(&mut b, d + 16, rva(lookup));
            b[FILE + strings..FILE + strings + dll.len()].copy_from_slice(dll.as_bytes());
            strings += (dll.len() + 2) & !1;
            for f in *functions {
                put32(&mut b, FILE + lookup, rva(strings));
                lookup += 8;
                // A two-byte hint (0), then the NUL-terminated name.
                b[FILE + strings + 2..FILE + strings + 2 + f.len()].copy_from_slice(f.as_bytes());
                strings += (f.len() + 4) & !1;
            }
            lookup += 8; // the null entry ending this DLL's table
        }
        let sum = pe_checksum(&b, opt + 64);
        put32(&mut b, opt + 64, sum);
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny_driver(machine: u16, dll: &str, func: &str) -> Vec<u8> {
        fixture::driver(machine, &[(dll, &[func])])
    }

    #[test]
    fn reads_a_valid_driver() {
        let b = tiny_driver(MACHINE_AMD64, "ntoskrnl.exe", "DbgPrint");
        let img = Image::parse(&b).unwrap();
        assert_eq!(img.machine, MACHINE_AMD64);
        assert_eq!(img.entry, 0x1000);
        assert_eq!(img.imports.len(), 1);
        assert_eq!(img.imports[0].dll, "ntoskrnl.exe");
        assert_eq!(img.imports[0].functions, ["DbgPrint"]);
        assert_eq!(img.driver_problems(MACHINE_AMD64), Vec::<String>::new());
    }

    #[test]
    fn flags_wrong_machine_and_foreign_import() {
        let b = tiny_driver(MACHINE_ARM64, "kernel32.dll", "Sleep");
        let img = Image::parse(&b).unwrap();
        let p = img.driver_problems(MACHINE_AMD64);
        assert!(p.iter().any(|s| s.contains("machine is ARM64")), "{p:?}");
        assert!(
            p.iter().any(|s| s.contains("kernel32.dll (Sleep)")),
            "{p:?}"
        );
    }

    #[test]
    fn flags_bad_checksum() {
        let mut b = tiny_driver(MACHINE_AMD64, "netio.sys", "WskRegister");
        b[0x201] ^= 0x90;
        let p = Image::parse(&b).unwrap().driver_problems(MACHINE_AMD64);
        assert!(p.iter().any(|s| s.contains("checksum")), "{p:?}");
    }

    #[test]
    fn rejects_non_pe() {
        assert!(Image::parse(b"\x7fELF").is_err());
        assert!(Image::parse(&[b'M', b'Z', 0, 0]).is_err());
    }
}
