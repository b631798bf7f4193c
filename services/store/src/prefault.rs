//! Fresh memory faulted in on another core, ahead of the thread that fills it.
//!
//! A split part's rows are copied into memory the process has never touched (64 MB for the
//! training part of a 1M × 10 file), and each 4 KiB page of it costs a page fault on its first
//! write, which a second thread can take ahead of the one that fills it
//! (`MADV_POPULATE_WRITE`). Reading a part, the second core only hashes, a fraction of its
//! time: the faults are moved there.
//!
//! Advising the memory for transparent huge pages instead was tried and is slower here: see
//! BENCHMARKS.md.

/// Below this, a buffer's faults are not worth a thread.
const WORTH_A_THREAD: usize = 4 << 20;

/// The whole pages of a vector's unused capacity, as addresses: what the vector will fill.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SparePages {
    start: usize,
    len: usize,
}

impl SparePages {
    /// The unused capacity of `v`, if it is large enough to be worth faulting in ahead.
    pub(crate) fn of<T>(v: &Vec<T>) -> Option<SparePages> {
        const PAGE: usize = 4096;
        let size = std::mem::size_of::<T>();
        let spare_start = (v.as_ptr() as usize).checked_add(v.len().checked_mul(size)?)?;
        let spare_end = spare_start.checked_add((v.capacity() - v.len()).checked_mul(size)?)?;
        let (start, end) = (spare_start.next_multiple_of(PAGE), spare_end / PAGE * PAGE);
        (end > start && end - start >= WORTH_A_THREAD)
            .then(|| SparePages { start, len: end - start })
    }

    /// Faults the pages in, writable, without writing to them: what the first write to each
    /// would have done. Where the kernel cannot (before Linux 5.14, or if the memory has gone),
    /// nothing is done, and the writes fault the pages in as they would have.
    pub(crate) fn populate(self) {
        #[cfg(target_os = "linux")]
        // SAFETY: MADV_POPULATE_WRITE only sets up page tables, as a write would, and never
        // reads or changes what the memory holds, so it races with nothing the owner does. The
        // range came from a live vector's capacity; were it freed meanwhile, the call would
        // fail (ENOMEM) or populate memory someone else now owns, which changes nothing either.
        #[allow(unsafe_code)]
        unsafe {
            libc::madvise(self.start as *mut libc::c_void, self.len, libc::MADV_POPULATE_WRITE);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_large_spare_capacity_is_faulted_in_ahead_and_the_vector_fills_as_ever() {
        assert!(
            SparePages::of(&Vec::<f64>::with_capacity(1000)).is_none(),
            "8 KB: not worth a thread"
        );
        let mut v: Vec<f64> = Vec::with_capacity(1 << 20);
        v.push(1.0);
        let spare = SparePages::of(&v).expect("8 MB of spare capacity");
        assert!(spare.start >= v.as_ptr() as usize + 8 && spare.start.is_multiple_of(4096));
        assert!(spare.start + spare.len <= v.as_ptr() as usize + 8 * v.capacity());
        std::thread::scope(|scope| {
            scope.spawn(move || spare.populate());
            v.extend((1..1 << 20).map(f64::from));
        });
        assert_eq!((v.len(), v[0], v[(1 << 20) - 1]), (1 << 20, 1.0, f64::from((1 << 20) - 1)));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn populated_pages_are_resident_before_anything_is_written() {
        let v: Vec<u8> = Vec::with_capacity(64 << 20);
        let spare = SparePages::of(&v).expect("64 MB spare");
        // How many of the range's pages are resident (mincore), whatever else runs beside.
        let resident_pages = || -> usize {
            let mut flags = vec![0u8; spare.len / 4096];
            // SAFETY: the range is whole pages of `v`'s live allocation, and `flags` has a
            // byte for each of them.
            #[allow(unsafe_code)]
            let status = unsafe {
                libc::mincore(spare.start as *mut libc::c_void, spare.len, flags.as_mut_ptr())
            };
            assert_eq!(status, 0, "mincore");
            flags.iter().filter(|&&f| f & 1 == 1).count()
        };
        let before = resident_pages();
        spare.populate();
        let after = resident_pages();
        // A kernel without MADV_POPULATE_WRITE (before 5.14) leaves it to the writes.
        let populate_known = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .ok()
            .and_then(|r| {
                let mut parts = r.trim().split(['.', '-']).map(|p| p.parse::<u32>().unwrap_or(0));
                Some((parts.next()?, parts.next()?))
            })
            .is_some_and(|version| version >= (5, 14));
        if populate_known {
            assert_eq!(
                (before, after),
                (0, spare.len / 4096),
                "the spare pages resident before and after"
            );
        }
        drop(v);
    }
}
