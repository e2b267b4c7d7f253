//! A payload in pieces: bytes of its own, and large byte strings left
//! where they are, in the buffer they came in (a driver's encoded
//! result). Sent with vectored writes, such a payload is never copied into
//! one piece: a megabyte byte string goes from the driver's buffer to the
//! socket as it is.

use std::ops::Range;

/// Byte strings at least this long are borrowed rather than copied.
pub const BORROW_FROM: usize = 64 * 1024;

/// A payload: pieces of its own buffer and of a source buffer, in order.
#[derive(Debug, Default)]
pub struct Scatter {
    own: Vec<u8>,
    pieces: Vec<Piece>,
    /// Where the own bytes not yet in a piece begin.
    open: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Own(Range<usize>),
    Source(Range<usize>),
}

impl Scatter {
    /// The payload's own bytes, to append to.
    pub fn own(&mut self) -> &mut Vec<u8> {
        &mut self.own
    }

    /// Appends `part`, which lies inside `source`, by reference.
    pub fn borrow(&mut self, source: &[u8], part: &[u8]) {
        let start = part.as_ptr() as usize - source.as_ptr() as usize;
        assert!(
            start + part.len() <= source.len(),
            "a borrowed part lies inside its source"
        );
        self.close_own();
        self.pieces.push(Piece::Source(start..start + part.len()));
    }

    fn close_own(&mut self) {
        if self.own.len() > self.open {
            self.pieces.push(Piece::Own(self.open..self.own.len()));
            self.open = self.own.len();
        }
    }

    /// The payload's length in bytes.
    pub fn len(&self) -> usize {
        let borrowed: usize = self
            .pieces
            .iter()
            .map(|piece| match piece {
                Piece::Source(range) => range.len(),
                Piece::Own(_) => 0,
            })
            .sum();
        self.own.len() + borrowed
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The pieces in order, `source` being the buffer borrowed from.
    pub fn slices<'a>(&'a self, source: &'a [u8]) -> Vec<&'a [u8]> {
        let mut slices: Vec<&[u8]> = self
            .pieces
            .iter()
            .map(|piece| match piece {
                Piece::Own(range) => &self.own[range.clone()],
                Piece::Source(range) => &source[range.clone()],
            })
            .collect();
        if self.own.len() > self.open {
            slices.push(&self.own[self.open..]);
        }
        slices
    }

    /// The payload in one buffer (for tests, and peers that need it so).
    pub fn concat(&self, source: &[u8]) -> Vec<u8> {
        self.slices(source).concat()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_come_out_in_order() {
        let source = b"0123456789".to_vec();
        let mut scatter = Scatter::default();
        scatter.own().extend_from_slice(b"<");
        scatter.borrow(&source, &source[2..5]);
        scatter.own().extend_from_slice(b"|");
        scatter.borrow(&source, &source[7..]);
        scatter.own().extend_from_slice(b">");
        assert_eq!(scatter.concat(&source), b"<234|789>");
        assert_eq!(scatter.len(), 9);
        assert_eq!(scatter.slices(&source).len(), 5);
    }
}
