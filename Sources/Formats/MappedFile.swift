#if canImport(Glibc)
import Glibc
#endif

/// A read-only memory map of a whole file; pages are read on first touch and shared with the
/// page cache, so opening a large checkpoint costs no copy.
final class MappedFile {
    let path: String
    let bytes: UnsafeRawBufferPointer

    init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else {
            throw FormatError(
                file: path, problem: "cannot open the file", fix: "Check that the path exists and is readable.")
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            throw FormatError(file: path, problem: "not a regular file", fix: "Pass the path of a model file.")
        }
        let size = Int(info.st_size)
        guard size > 0 else {
            throw FormatError(file: path, problem: "the file is empty", fix: "Download or export it again.")
        }
        guard let base = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), base != MAP_FAILED else {
            throw FormatError(
                file: path, problem: "cannot map the file into memory",
                fix: "Check free address space and file permissions.")
        }
        bytes = UnsafeRawBufferPointer(start: base, count: size)
    }

    /// Unmaps the pages of bytes `offset ..< offset + count` from this process (the data stays in the page cache
    /// and faults back in if read again).
    func release(offset: Int, count: Int) {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = offset / page * page, end = min(bytes.count, (offset + count + page - 1) / page * page)
        guard end > start, let base = bytes.baseAddress else { return }
        madvise(UnsafeMutableRawPointer(mutating: base + start), end - start, Int32(MADV_DONTNEED))
    }

    deinit { munmap(UnsafeMutableRawPointer(mutating: bytes.baseAddress), bytes.count) }
}
