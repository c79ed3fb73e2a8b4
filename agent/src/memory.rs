//! Giving freed memory back to the operating system.

/// Returns the free pages of every heap arena to the operating system.
///
/// glibc keeps memory freed by a thread in that thread's arena for its next
/// allocations. After a burst of reading (start-up, a rotated file read in full) the
/// tailer's arena would otherwise stay at the burst's size for as long as the files
/// are quiet.
pub(crate) fn return_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[expect(
        unsafe_code,
        reason = "malloc_trim takes no pointer and may be called at any time"
    )]
    // SAFETY: malloc_trim only walks the allocator's own arenas, under their locks.
    unsafe {
        libc::malloc_trim(0);
    }
}
