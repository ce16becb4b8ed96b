//! Small valid PDFs built in the test, for PDF watches: one page per entry of `pages`, each
//! line of a page shown with Helvetica (one of the fonts every reader has), a line below the
//! one before, and a cross-reference table with the real offsets.

/// A PDF whose pages hold these lines (ASCII, or Latin-1 through WinAnsiEncoding).
pub fn document(pages: &[&[&str]]) -> Vec<u8> {
    let mut objects: Vec<String> = Vec::new();
    let page_ids: Vec<usize> = (0..pages.len()).map(|i| 4 + 2 * i).collect();
    let kids: Vec<String> = page_ids.iter().map(|id| format!("{id} 0 R")).collect();
    objects.push("<< /Type /Catalog /Pages 2 0 R >>".into());
    objects.push(format!(
        "<< /Type /Pages /Kids [{}] /Count {} >>",
        kids.join(" "),
        pages.len()
    ));
    objects.push(
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>".into(),
    );
    for (i, lines) in pages.iter().enumerate() {
        let mut content = String::from("BT /F1 12 Tf 72 760 Td 16 TL\n");
        for line in lines.iter() {
            content.push('(');
            for c in line.chars() {
                match c {
                    '(' | ')' | '\\' => {
                        content.push('\\');
                        content.push(c);
                    }
                    c if (c as u32) < 0x80 => content.push(c),
                    // Latin-1 as an octal escape: WinAnsi agrees with it there.
                    c if (c as u32) < 0x100 => content.push_str(&format!("\\{:03o}", c as u32)),
                    _ => content.push('?'),
                }
            }
            content.push_str(") Tj T*\n");
        }
        content.push_str("ET");
        objects.push(format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> /Contents {} 0 R >>",
            page_ids[i] + 1
        ));
        objects.push(format!(
            "<< /Length {} >>\nstream\n{content}\nendstream",
            content.len()
        ));
    }
    assemble(objects.into_iter().map(String::into_bytes).collect())
}

/// A PDF whose one page's content stream is small on the wire and inflates to
/// `inflated_mb` MiB of spaces (a decompression bomb: whitespace is a valid content stream,
/// so only the reader's memory budget stops it).
pub fn bomb(inflated_mb: usize) -> Vec<u8> {
    let data = zlib_run(b' ', inflated_mb * 1024 * 1024);
    let mut stream = format!(
        "<< /Length {} /Filter /FlateDecode >>\nstream\n",
        data.len()
    )
    .into_bytes();
    stream.extend_from_slice(&data);
    stream.extend_from_slice(b"\nendstream");
    assemble(vec![
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>".to_vec(),
        stream,
    ])
}

/// A zlib stream of about `len` copies of `byte` (rounded up to one byte plus whole runs of
/// 258), deflated by hand: one fixed-Huffman block of the literal and then back-references
/// of length 258 at distance 1, 13 bits each, about 1:160. Written here because no deflate
/// library searches that hard, and a test should not spend seconds compressing gigabytes.
fn zlib_run(byte: u8, len: usize) -> Vec<u8> {
    let runs = len.saturating_sub(1).div_ceil(258);
    let total = 1 + runs * 258;
    let mut bits = Bits::default();
    bits.value(1, 1); // BFINAL
    bits.value(1, 2); // BTYPE 01: fixed Huffman codes
    // Literals 0-143 are the 8-bit codes 0x30 + byte; 144-255 the 9-bit 0x190 + (byte - 144).
    if byte < 144 {
        bits.code(0x30 + u32::from(byte), 8);
    } else {
        bits.code(0x190 + u32::from(byte - 144), 9);
    }
    for _ in 0..runs {
        bits.code(0b1100_0101, 8); // length symbol 285: 258, no extra bits
        bits.code(0, 5); // distance code 0: 1
    }
    bits.code(0, 7); // end of block (256)
    let mut out = vec![0x78, 0x01];
    out.extend_from_slice(&bits.finish());
    // Adler-32 of `total` copies of `byte`.
    let (n, b, m) = (total as u128, u128::from(byte), 65_521u128);
    let s1 = (1 + n * b) % m;
    let s2 = (n + b * n * (n + 1) / 2) % m;
    out.extend_from_slice(&(((s2 << 16) | s1) as u32).to_be_bytes());
    out
}

/// Deflate's bit order: values least significant bit first, Huffman codes most significant
/// bit first, packed from each byte's low bit.
#[derive(Default)]
struct Bits {
    out: Vec<u8>,
    acc: u64,
    n: u32,
}

impl Bits {
    fn push(&mut self, bit: u32) {
        self.acc |= u64::from(bit & 1) << self.n;
        self.n += 1;
        if self.n == 64 {
            self.out.extend_from_slice(&self.acc.to_le_bytes());
            self.acc = 0;
            self.n = 0;
        }
    }
    fn value(&mut self, v: u32, width: u32) {
        for i in 0..width {
            self.push(v >> i);
        }
    }
    fn code(&mut self, c: u32, width: u32) {
        for i in (0..width).rev() {
            self.push(c >> i);
        }
    }
    fn finish(mut self) -> Vec<u8> {
        let bytes = self.n.div_ceil(8) as usize;
        self.out.extend_from_slice(&self.acc.to_le_bytes()[..bytes]);
        self.out
    }
}

/// Numbered objects, a cross-reference table and a trailer around them.
fn assemble(objects: Vec<Vec<u8>>) -> Vec<u8> {
    let mut out = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::with_capacity(objects.len());
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(b"\nendobj\n");
    }
    let xref = out.len();
    let mut table = format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1);
    for off in offsets {
        table.push_str(&format!("{off:010} 00000 n \n"));
    }
    out.extend_from_slice(table.as_bytes());
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a panic is a failed test

    use std::io::Read;

    /// The hand-made stream is one a real inflater reads back, checksum included.
    #[test]
    fn the_run_inflates_to_what_it_says() {
        for (byte, len) in [(b' ', 1), (b' ', 5000), (200u8, 100_000)] {
            let z = super::zlib_run(byte, len);
            let mut back = Vec::new();
            flate2::read::ZlibDecoder::new(&z[..])
                .read_to_end(&mut back)
                .unwrap();
            let total = 1 + (len - 1).div_ceil(258) * 258;
            assert_eq!(back.len(), total);
            assert!(back.iter().all(|b| *b == byte));
        }
    }
}
