//! [`AddrHasher`]: the hasher of the address-keyed tables (interned stacks,
//! a scope's sites), and [`BlockHasher`], the live table's.

use std::hash::Hasher;

/// Hashes an address: a folded 64×64→128 multiply, so the low bits the map
/// indexes with depend on all bits of the (16-byte-aligned) address.
#[derive(Default)]
pub(crate) struct AddrHasher(u64);

impl Hasher for AddrHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        // Slices of addresses arrive here as raw bytes: eight at a time.
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.write_u64(u64::from_ne_bytes(word));
        }
        for &b in chunks.remainder() {
            self.write_u64(u64::from(b));
        }
    }
    #[inline]
    fn write_u64(&mut self, n: u64) {
        let m = u128::from(n ^ self.0) * 0x9E37_79B9_7F4A_7C15;
        self.0 = (m as u64) ^ ((m >> 64) as u64);
    }
    #[inline]
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

/// `bits` of an address and up, mixed: one 64-bit multiply (its top bits
/// are well mixed), folded down so that the low bits are too.
#[inline]
pub(crate) fn mix_above(addr: usize, bits: u32) -> u64 {
    let m = ((addr >> bits) as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    m ^ (m >> 29)
}

/// Hashes a block address for the live table, keeping neighbours together:
/// the blocks of one 64 KiB region land on consecutive buckets, a page per
/// bucket, from a point chosen by the region's mix. A program walking
/// through its heap (a `Vec` of strings filled, then dropped) walks through
/// the table too, instead of missing the cache on every record. (The table
/// picks a block's shard by its cache line, so a shard holds about one of
/// a page's blocks, and pages are the right grain.) The top 7 bits
/// (hashbrown's tag) take the address's own low bits, so neighbours' tags
/// differ.
#[derive(Default)]
pub(crate) struct BlockHasher(u64);

impl Hasher for BlockHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        // Only addresses are hashed with it; anything else still hashes.
        let mut fallback = AddrHasher(self.0);
        fallback.write(bytes);
        self.0 = fallback.finish();
    }
    #[inline]
    fn write_usize(&mut self, addr: usize) {
        let page = (addr >> 12) as u64;
        let tag = ((addr >> 4) as u64) << 57;
        self.0 = mix_above(addr, 16).wrapping_add(page) ^ tag;
    }
    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.write_usize(n as usize);
    }
}
