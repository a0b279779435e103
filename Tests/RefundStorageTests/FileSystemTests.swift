import Foundation
import Testing

@testable import RefundStorage

#if canImport(Glibc)
    import Glibc
#endif

@Suite("File system seam")
struct FileSystemTests {
    @Test("POSIX file system basics")
    func posixBasics() async throws {
        try await withTemporaryDirectory { dir in
            let fs = PosixFileSystem()
            let sub = dir + "/a/b"
            try fs.createDirectory(sub)
            try fs.createDirectory(sub)
            let path = sub + "/f"
            let handle = try fs.createForAppend(path)
            try fs.write(handle, [1, 2, 3])
            try fs.write(handle, [4])
            try fs.fsync(handle)
            try fs.close(handle)
            try fs.fsyncDirectory(sub)
            #expect(try fs.readFile(path) == [1, 2, 3, 4])
            #expect(try fs.readPrefix(path, count: 2) == [1, 2])
            #expect(try fs.readPrefix(path, count: 10) == [1, 2, 3, 4])
            #expect(try fs.fileSize(path) == 4)
            #expect(throws: StorageError.self) { try fs.createForAppend(path) }
            let again = try fs.openForAppend(path)
            try fs.write(again, [5])
            try fs.close(again)
            try fs.truncate(path, toSize: 2)
            #expect(try fs.readFile(path) == [1, 2])
            try fs.rename(from: path, to: sub + "/g")
            #expect(try fs.listDirectory(sub) == ["g"])
            try fs.remove(sub + "/g")
            #expect(!fs.fileExists(sub + "/g"))
        }
    }

    @Test("errors carry errno, its text and the path")
    func errors() async throws {
        try await withTemporaryDirectory { dir in
            let error = await storageError { _ = try PosixFileSystem().readFile(dir + "/missing") }
            #expect(error?.code == .notFound)
            #expect(error?.errno == ENOENT)
            #expect(error?.path == dir + "/missing")
            #expect(error?.message.contains("No such file") == true)
        }
    }

    @Test("fault injection fails exactly the chosen write and fsync and counts calls")
    func faults() async throws {
        try await withTemporaryDirectory { dir in
            let fs = FaultInjectingFileSystem()
            let handle = try fs.createForAppend(dir + "/f")
            fs.failWrite(afterSuccessfulWrites: 1, errno: ENOSPC, partialBytes: 2)
            try fs.write(handle, [1])
            let error = await storageError { try fs.write(handle, [2, 3, 4]) }
            #expect(error?.errno == ENOSPC)
            try fs.write(handle, [5])
            fs.failFsync(errno: EIO)
            #expect(throws: StorageError.self) { try fs.fsync(handle) }
            try fs.fsync(handle)
            try fs.close(handle)
            #expect(try fs.readFile(dir + "/f") == [1, 2, 3, 5])
            #expect(fs.counters.writes == 3)
            #expect(fs.counters.fsyncs == 2)
        }
    }
}
