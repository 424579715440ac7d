import Foundation

// Allocator settings for a process that allocates many large, short-lived float buffers.
//
// Every op returns a fresh [Float]. With glibc's defaults, buffers above the (dynamic) mmap
// threshold are mmap'ed and unmapped again, and the top of the heap is trimmed when freed, so each
// large output costs a page fault per 4 KiB page plus the kernel zeroing it: 20-25 % of a GKNet
// forward pass. Serving everything from the heap and never trimming it keeps freed pages mapped
// for the next op (the process stays at its high-water mark, which is what VmHWM reports anyway).
#if canImport(Glibc)
import Glibc
#endif

enum AllocatorTuning {
    /// glibc's `mallopt` parameters (<malloc.h>, which the Glibc module does not export).
    private static let mmapMaximum: Int32 = -4, trimThreshold: Int32 = -1

    /// Applies the settings (`RuntimeSettings.apply()` calls it unless `mallocTuning` is off).
    /// Calling it again changes nothing.
    /// - Returns: whether glibc's `mallopt` was found and called.
    @discardableResult
    static func apply() -> Bool {
        #if canImport(Glibc)
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt") else { return false }
        let mallopt = unsafeBitCast(symbol, to: (@convention(c) (Int32, Int32) -> Int32).self)
        // No mmap'ed chunks: large buffers come from the heap and are reused after free.
        _ = mallopt(mmapMaximum, 0)
        // Never give the top of the heap back to the kernel (it would fault in again on the next op).
        _ = mallopt(trimThreshold, Int32.max)
        return true
        #else
        return false
        #endif
    }
}
