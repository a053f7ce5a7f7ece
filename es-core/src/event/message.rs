//! A message built in a `const fn`, for compile errors that name what is wrong (const code cannot `format!`).

/// Longer messages are cut at a character boundary.
const CAPACITY: usize = 512;

/// Text appended piece by piece into a fixed buffer.
pub(crate) struct Message {
    bytes: [u8; CAPACITY],
    len: usize,
}

impl Message {
    pub(crate) const fn new() -> Self {
        Self {
            bytes: [0; CAPACITY],
            len: 0,
        }
    }

    /// Appends `text`, as much of it as fits in whole characters.
    pub(crate) const fn text(mut self, text: &str) -> Self {
        let text = text.as_bytes();
        let mut i = 0;
        while i < text.len() {
            let width = match text[i] {
                b if b < 0x80 => 1,
                b if b >= 0xF0 => 4,
                b if b >= 0xE0 => 3,
                _ => 2,
            };
            if self.len + width > CAPACITY || i + width > text.len() {
                break;
            }
            let mut k = 0;
            while k < width {
                self.bytes[self.len] = text[i + k];
                self.len += 1;
                k += 1;
            }
            i += width;
        }
        self
    }

    /// Appends `number` in decimal.
    pub(crate) const fn number(self, number: u32) -> Self {
        let mut digits = [0u8; 10];
        let (mut n, mut count) = (number, 0);
        loop {
            digits[digits.len() - 1 - count] = b'0' + (n % 10) as u8;
            count += 1;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        let (_, used) = digits.split_at(digits.len() - count);
        match core::str::from_utf8(used) {
            Ok(text) => self.text(text),
            Err(_) => self,
        }
    }

    pub(crate) const fn as_str(&self) -> &str {
        let (used, _) = self.bytes.split_at(self.len);
        match core::str::from_utf8(used) {
            Ok(text) => text,
            Err(_) => "the message is not UTF-8",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_numbers_are_joined() {
        let m = Message::new()
            .text("v")
            .number(0)
            .text(" → v")
            .number(4_294_967_295);
        assert_eq!(m.as_str(), "v0 → v4294967295");
    }

    #[test]
    fn a_long_message_is_cut_at_a_character() {
        let long = "é".repeat(CAPACITY);
        let m = Message::new().text("x").text(&long);
        assert_eq!(m.as_str().len(), CAPACITY - 1);
        assert!(m.as_str().ends_with('é'));
    }
}
