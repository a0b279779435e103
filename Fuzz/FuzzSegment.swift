// libFuzzer target: the WAL segment reader and log recovery (tools/fuzz.sh segment).
//
// The input is a log directory: its bytes are split before every "RFWAL" (segment) and "RFMAN" (manifest) magic
// after the first byte, into at most 5 pieces; segment pieces become wal-…1.log, wal-…2.log, … in order, the first
// manifest piece becomes wal.manifest. (A real segment is one piece; a real directory's files concatenated are the
// directory again.) The files go into the project's in-memory SimulatedFileSystem and are read every way the
// engine reads a log:
//
//   readAll()                 the iterator: frame check, LZ4, record splitting (must not change the files)
//   recover()                 validation and torn-tail cut (a failure must not change the files)
//   recover(repair: true)     must always succeed, and leave a log that recovers with nothing to cut
//   WriteAheadLog(directory:) open (manifest check, recovery, positioning), append one record, close, read back
//
// Nothing may trap. Errors must be .corruption (or .missing, for a manifest naming absent segments).

import RefundStorage

#if canImport(Glibc)
    import Glibc
#endif

let directory = "/wal"
/// FUZZ_DEBUG=1: say what each step found (to understand a crashing input).
let debug = getenv("FUZZ_DEBUG") != nil

func debugLog(_ message: @autoclosure () -> String) {
    guard debug else { return }
    let line = Array((message() + "\n").utf8)
    _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
}

func check(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError("invariant broken: \(message())") }
}

/// The files the input stands for: name → bytes.
func files(_ data: [UInt8]) -> [String: [UInt8]] {
    let segmentMagic = SegmentFormat.magic
    let manifestMagic = LogManifest.magic
    var starts = [0]
    var i = 1
    while i + 5 <= data.count, starts.count < 5 {
        if data[i] == 0x52, data[i + 1] == 0x46 {  // "RF"
            let word = Array(data[i..<(i + 5)])
            if word == segmentMagic || word == manifestMagic { starts.append(i) }
        }
        i += 1
    }
    var result: [String: [UInt8]] = [:]
    var segment: UInt64 = 0
    for (n, start) in starts.enumerated() {
        let piece = Array(data[start..<(n + 1 < starts.count ? starts[n + 1] : data.count)])
        if piece.starts(with: manifestMagic) {
            if result[LogManifest.fileName] == nil { result[LogManifest.fileName] = piece }
        } else {
            segment += 1
            result[SegmentFormat.fileName(segment: segment)] = piece
        }
    }
    return result
}

func fileSystem(_ files: [String: [UInt8]]) -> SimulatedFileSystem {
    let fs = SimulatedFileSystem(seed: 1)
    do {
        try fs.createDirectory(directory)
        for (name, bytes) in files {
            let handle = try fs.createForAppend(directory + "/" + name)
            try fs.write(handle, bytes)
            try fs.close(handle)
        }
    } catch {
        fatalError("setting up the in-memory directory failed: \(error)")
    }
    return fs
}

/// What is in the directory now.
func contents(_ fs: SimulatedFileSystem) -> [String: [UInt8]] {
    var result: [String: [UInt8]] = [:]
    for path in fs.allFiles() where path.hasPrefix(directory + "/") {
        result[String(path.dropFirst(directory.count + 1))] = try? fs.readFile(path)
    }
    return result
}

/// Reads everything; the records, or nil after a `.corruption` error (any other error is a bug).
func readAll(_ fs: SimulatedFileSystem) -> [LogRecord]? {
    do {
        let records = try LogReader(directory: directory, fileSystem: fs).readAll()
        for (a, b) in zip(records, records.dropFirst()) {
            check(b.sequence == a.sequence + 1, "records \(a.sequence) then \(b.sequence)")
        }
        return records
    } catch {
        check(error.code == .corruption, "readAll threw \(error.code): \(error.message)")
        debugLog("readAll: \(error) (\(error.path ?? "?") at \(error.offset ?? -1))")
        return nil
    }
}

func checkReport(_ report: RecoveryReport) {
    check(report.nextSequence >= report.firstSequence, "next \(report.nextSequence) < first \(report.firstSequence)")
    check(report.segments.isEmpty || report.firstSequence >= 1, "a log with segments starting at sequence 0")
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSegment(_ pointer: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let input = files(Array(UnsafeBufferPointer(start: pointer, count: count)))
    if let manifest = input[LogManifest.fileName] { _ = try? LogManifest.decode(manifest, path: "manifest") }

    let readOnly = fileSystem(input)
    let read = readAll(readOnly)
    check(contents(readOnly) == input, "reading changed the files")

    // Recovery without repair: it throws corruption and changes nothing, or it cuts at most a torn tail, which
    // readers skip anyway. (Recovery checks checksums and sequence numbers and never decompresses, so a block
    // whose checksum verifies but whose payload does not decode passes it and fails every read: "reads back the
    // same" is only asked of logs that read back before.)
    let strict = fileSystem(input)
    do {
        let report = try LogReader(directory: directory, fileSystem: strict).recover()
        debugLog("recover: \(report)")
        checkReport(report)
        if let read {
            check(readAll(strict) == read, "recovery changed what reads back")
            if let last = read.last { check(report.nextSequence == last.sequence + 1, "next sequence after recovery") }
        }
    } catch {
        debugLog("recover: \(error)")
        check(error.code == .corruption, "recover threw \(error.code): \(error.message)")
        check(read == nil, "recovery found corruption where reading found none: \(error.message)")
        check(contents(strict) == input, "a failed recovery changed the files")
    }

    // Repair always succeeds; what is left recovers with nothing to cut and reads back a prefix of what read back.
    let repaired = fileSystem(input)
    do {
        let report = try LogReader(directory: directory, fileSystem: repaired).recover(repair: true)
        debugLog("repair: \(report)")
        checkReport(report)
        let again = try LogReader(directory: directory, fileSystem: repaired).recover()
        check(again.tornTail == nil && again.repair == nil, "a repaired log needs recovery again")
        let after = readAll(repaired)
        if let read { check(after.map { read.starts(with: $0) } ?? false, "a repair lost records that read back") }
    } catch {
        check(false, "repair threw \(error.code): \(error.message)")
    }

    // Opening the log as the engine does: recovery, then appending after the last record.
    let opened = fileSystem(input)
    do {
        let log = try WriteAheadLog(directory: directory, fileSystem: opened, fsync: .never)
        let next = log.nextSequence
        check(next >= 1, "the log opened at sequence \(next)")
        let sequence = try log.append([0x2A])
        check(sequence == next, "appended at \(sequence), expected \(next)")
        try log.close()
        let records = try LogReader(directory: directory, fileSystem: opened).readAll(from: sequence)
        check(records == [LogRecord(sequence: sequence, bytes: [0x2A])], "the appended record does not read back")
    } catch {
        debugLog("open: \(error)")
        check(error.code == .corruption || error.code == .missing, "opening threw \(error.code): \(error.message)")
    }
    return 0
}
