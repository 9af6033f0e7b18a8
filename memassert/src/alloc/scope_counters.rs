//! The counters of one open scope, and how a charge changes them.
//!
//! Pure data: a [`State`] is only ever changed under its slot's lock (see
//! `scope_slots` and `scope_registry`); a fast scope's figures are in the
//! live table's shards until it closes (`scope_fast`). "Live at the peak"
//! costs O(1) per allocation: a site's figures are saved on its first
//! change after each new peak ([`State::touch`]).

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use crate::alloc::live_table::FastCounts;
use crate::base::addr_hash::AddrHasher;
use crate::capture::stack_table::StackId;

/// A scope as the registry names it: its slot index and the slot's 64-bit
/// generation when it opened (`generation << INDEX_BITS | index`; 0: none).
pub(crate) type ScopeRef = u64;

/// The stack id of blocks allocated with no stack captured (counting
/// scopes): counted in the scope, attributed to no site.
pub(crate) const NO_STACK: StackId = StackId::MAX;

/// Per-site counters of one scope.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Site {
    /// Live bytes and blocks now.
    pub(crate) bytes: usize,
    pub(crate) blocks: usize,
    /// Allocations made and bytes requested, in all.
    pub(crate) allocs: usize,
    pub(crate) total: usize,
    /// Most live bytes (and the blocks then) this site ever held at once.
    pub(crate) max_bytes: usize,
    pub(crate) max_blocks: usize,
    /// Live bytes and blocks as they were at the scope's latest peak, valid
    /// when `epoch` equals the scope's epoch (see [`State::touch`]).
    pub(crate) saved_bytes: usize,
    pub(crate) saved_blocks: usize,
    pub(crate) epoch: u64,
    /// The first thread other than the scope's own that allocated here
    /// (`thread_owner::name_id`; 0: only the scope's own thread).
    pub(crate) thread: u16,
}

/// Allocation requests by size, in power-of-two buckets: bucket `k` counts
/// requests of `2^k` to `2^(k+1) - 1` bytes (bucket 0 also zero-size ones).
#[derive(Clone, Copy, Debug)]
pub(crate) struct SizeHistogram(pub(crate) [usize; 64]);

impl Default for SizeHistogram {
    fn default() -> SizeHistogram {
        SizeHistogram([0; 64])
    }
}

impl SizeHistogram {
    #[inline]
    fn add(&mut self, size: usize) {
        let bucket = (usize::BITS - 1 - (size | 1).leading_zeros()) as usize;
        self.0[bucket & 63] += 1;
    }
}

/// The counters of one open scope.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) current: usize,
    pub(crate) blocks: usize,
    pub(crate) peak: usize,
    pub(crate) total: usize,
    pub(crate) allocs: usize,
    /// Requests by size (not kept by fast scopes, which only count).
    pub(crate) sizes: SizeHistogram,
    pub(crate) sites: HashMap<StackId, Site, BuildHasherDefault<AddrHasher>>,
    /// stats_alloc's view: reallocations among `allocs`, blocks given back,
    /// and bytes by its rules (a realloc's growth counts as allocated, its
    /// shrinkage as deallocated).
    pub(crate) reallocs: usize,
    pub(crate) frees: usize,
    pub(crate) stats_bytes_allocated: usize,
    pub(crate) stats_bytes_deallocated: usize,
    pub(crate) bytes_reallocated: isize,
    /// Bumped each time a new peak is reached.
    pub(crate) epoch: u64,
    /// The slot generation this scope opened with, and its live-table tag.
    pub(crate) generation: u64,
    pub(crate) tag: u32,
    /// The nearest enclosing scope still open, on the same thread (0: none).
    pub(crate) parent: ScopeRef,
    /// Open scopes whose parent this is.
    pub(crate) children: usize,
    /// Set when the scope starts closing.
    pub(crate) closing: bool,
    /// Whether this scope keeps per-site figures (false: counting).
    pub(crate) keeps_sites: bool,
    /// The function whose code this scope follows onto other threads.
    pub(crate) follow: Option<Box<str>>,
    /// Per stack seen on another thread: does it run that code?
    pub(crate) follow_cache: HashMap<StackId, bool, BuildHasherDefault<AddrHasher>>,
    /// For a fast scope, its index in the shards' [`FastCounts`]: its
    /// figures are there and in `FAST_LIVE`, not in the fields above, until it
    /// closes.
    pub(crate) fast: Option<usize>,
}

impl State {
    /// The site's counters, first saving its live figures if this is its
    /// first change since the latest peak. A site untouched since the peak
    /// still holds its peak figures in `bytes`/`blocks`; a touched one holds
    /// them in `saved_*`. So "live at the peak" costs O(1) per allocation.
    pub(crate) fn touch(&mut self, stack: StackId) -> &mut Site {
        let epoch = self.epoch;
        let site = self.sites.entry(stack).or_default();
        if site.epoch != epoch {
            site.saved_bytes = site.bytes;
            site.saved_blocks = site.blocks;
            site.epoch = epoch;
        }
        site
    }

    pub(crate) fn charge_alloc(
        &mut self,
        stack: StackId,
        size: usize,
        charge: Charge,
        thread: u16,
    ) {
        self.alloc(stack, size, !matches!(charge, Charge::Restore));
        if thread != 0 && stack != NO_STACK && self.keeps_sites {
            let site = self.sites.entry(stack).or_default();
            if site.thread == 0 {
                site.thread = thread;
            }
        }
        match charge {
            Charge::Alloc => self.stats_bytes_allocated += size,
            Charge::Realloc { old } => {
                self.reallocs += 1;
                if size > old {
                    self.stats_bytes_allocated += size - old;
                } else {
                    self.stats_bytes_deallocated += old - size;
                }
                self.bytes_reallocated += size as isize - old as isize;
            }
            Charge::Restore => {}
        }
    }

    pub(crate) fn alloc(&mut self, stack: StackId, size: usize, count_request: bool) {
        if stack == NO_STACK || !self.keeps_sites {
            return self.count_alloc(size, count_request);
        }
        let site = self.touch(stack);
        site.bytes += size;
        site.blocks += 1;
        if site.bytes > site.max_bytes {
            site.max_bytes = site.bytes;
            site.max_blocks = site.blocks;
        }
        if count_request {
            site.allocs += 1;
            site.total += size;
        }
        self.count_alloc(size, count_request);
    }

    /// The scope-wide figures of an allocation.
    pub(crate) fn count_alloc(&mut self, size: usize, count_request: bool) {
        self.current += size;
        self.blocks += 1;
        if count_request {
            self.allocs += 1;
            self.total += size;
            self.sizes.add(size);
        }
        if self.current > self.peak {
            self.peak = self.current;
            self.epoch += 1;
        }
    }

    pub(crate) fn free(&mut self, stack: StackId, size: usize) {
        if stack != NO_STACK && self.keeps_sites {
            let site = self.touch(stack);
            site.bytes = site.bytes.saturating_sub(size);
            site.blocks = site.blocks.saturating_sub(1);
        }
        self.current = self.current.saturating_sub(size);
        self.blocks = self.blocks.saturating_sub(1);
    }

    pub(crate) fn apply(&mut self, op: Op) {
        match op {
            Op::Alloc {
                stack,
                size,
                charge,
                thread,
            } => self.charge_alloc(stack, size, charge, thread),
            Op::Free {
                stack,
                size,
                realloc,
            } => {
                self.free(stack, size);
                if !realloc {
                    self.frees += 1;
                    self.stats_bytes_deallocated += size;
                }
            }
        }
    }

    /// A fast scope's figures, added up from the shards and `FAST_LIVE`.
    pub(crate) fn fill_from_fast(&mut self, counts: &FastCounts, current: usize, peak: usize) {
        self.current = current;
        self.peak = peak;
        self.blocks = counts.blocks;
        self.allocs = counts.allocs;
        self.total = counts.total;
        self.reallocs = counts.reallocs;
        self.frees = counts.frees;
        self.stats_bytes_allocated = counts.stats_bytes_allocated;
        self.stats_bytes_deallocated = counts.stats_bytes_deallocated;
        self.bytes_reallocated = counts.bytes_reallocated as isize;
    }

    /// Live `(bytes, blocks)` per site at the peak.
    pub(crate) fn at_peak(&self) -> impl Iterator<Item = (StackId, usize, usize)> + '_ {
        self.sites.iter().filter_map(|(&stack, s)| {
            let (bytes, blocks) = if s.epoch == self.epoch {
                (s.saved_bytes, s.saved_blocks)
            } else {
                (s.bytes, s.blocks)
            };
            (blocks > 0).then_some((stack, bytes, blocks))
        })
    }
}

/// What is being charged.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Charge {
    /// A fresh block (`alloc`, `alloc_zeroed`).
    Alloc,
    /// The block a `realloc` returned; `old` is the size it had.
    Realloc { old: usize },
    /// A block whose `realloc` failed, put back as it was: not a request.
    Restore,
}

/// One charge, as applied to each scope of a chain.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Op {
    Alloc {
        stack: StackId,
        size: usize,
        charge: Charge,
        /// The thread's name id when not the scope's own thread (0).
        thread: u16,
    },
    /// `realloc`: the block is moved or resized, not given back.
    Free {
        stack: StackId,
        size: usize,
        realloc: bool,
    },
}
