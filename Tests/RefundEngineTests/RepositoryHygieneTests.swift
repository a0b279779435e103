import Foundation
import RefundCore
import Testing

@testable import RefundEngine

/// Checks on the repository's own text: it must stand on its own, on any machine.
///
/// The files are read relative to this file (`#filePath`), so the test needs no working directory and no git.
@Suite("repository hygiene")
struct RepositoryHygieneTests {
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// What the repository ships as text: the directories and top-level files that are tracked. Build outputs
    /// (`.build*`, `.swiftpm`) and data directories are not walked.
    static let roots = ["Sources", "Tests", "docs", "tools", "Benchmarks", "Fuzz", ".ci"]
    static let topLevelFiles = ["README.md", "CHANGELOG.md", "Package.swift", ".gitignore"]

    /// Every text file under ``roots`` and every ``topLevelFiles`` entry, with its path relative to the root.
    /// A file that is not UTF-8 or holds a NUL byte is binary (a fuzz seed) and is left out.
    static func textFiles() -> [(path: String, text: String)] {
        let fm = FileManager.default
        var files: [(String, String)] = []
        func add(_ relative: String) {
            guard let data = fm.contents(atPath: root.appendingPathComponent(relative).path),
                !data.contains(0), let text = String(data: data, encoding: .utf8)
            else { return }
            files.append((relative, text))
        }
        for file in topLevelFiles { add(file) }
        for directory in roots {
            guard let walker = fm.enumerator(atPath: root.appendingPathComponent(directory).path) else { continue }
            while let entry = walker.nextObject() as? String {
                let name = (entry as NSString).lastPathComponent
                if name.hasPrefix(".build") || name == ".swiftpm" || name.hasSuffix("-data") {
                    walker.skipDescendants()
                    continue
                }
                var isDirectory: ObjCBool = false
                let relative = directory + "/" + entry
                if fm.fileExists(atPath: root.appendingPathComponent(relative).path, isDirectory: &isDirectory),
                    !isDirectory.boolValue
                {
                    add(relative)
                }
            }
        }
        return files
    }

    /// The rule: no text names a place on one machine as where the project's files are.
    ///
    /// A finding is an absolute path under a root that only ever holds one person's or one machine's files:
    /// a home directory (home, Users, root), a workspace or mount (work, mnt, Volumes, srv; the list below
    /// spells each as a root), a temporary directory (`/tmp/`, `/var/tmp/`, macOS's `/var/folders/` and `/private/`), or a
    /// Windows drive (`C:\`). "Absolute" means the `/` starts the path: it comes at the start of a line or after
    /// a character that cannot be part of a path (space, quote, backtick, bracket, `=`, `,`, `:`). So
    /// `./tmp/x`, `$HOME/tmp/x`, `Tests/work/x` and `https://host/home/x` are not findings.
    ///
    /// Paths that are the same on every Linux machine are allowed, because they name the system, not a copy of
    /// this project: `/dev/null`, `/proc/self/status`, `/sys/…`, `/usr/…`, `/etc/…`, `/var/lib/refundd` (where
    /// the systemd unit keeps the daemon's data), `/run/…`. Tests make temporary directories with
    /// `NSTemporaryDirectory()`, and docs write paths relative to the repository (`./refund-data`) or as
    /// placeholders (`DIR`).
    ///
    /// The product contract lives in the repository (`docs/contract.md`); naming a copy beside it
    /// (`shared/contract`) is a finding too, wherever it appears.
    // Spelt in pieces so that this file is not itself a finding for a plain grep (the before-stop check).
    static let machineRoots = [
        "home", "Users", "root", "work", "mnt", "Volumes", "srv", "tmp", "var/tmp", "var/folders", "private",
    ].map { "/" + $0 + "/" }
    static let pathBoundaries: Set<Character> = [" ", "\t", "\"", "'", "`", "(", "[", "{", "<", "=", ",", ":", ";", "|", ">"]

    static func findings(in text: String) -> [String] {
        var found: [String] = []
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = String(line)
            if line.contains("shared" + "/contract") { found.append("\(number + 1): shared/contract: \(line)") }
            if line.range(of: #"\b[A-Za-z]:\\"#, options: .regularExpression) != nil {
                found.append("\(number + 1): Windows path: \(line)")
            }
            for machineRoot in machineRoots {
                var searchStart = line.startIndex
                while let range = line.range(of: machineRoot, range: searchStart..<line.endIndex) {
                    if range.lowerBound == line.startIndex
                        || pathBoundaries.contains(line[line.index(before: range.lowerBound)])
                    {
                        found.append("\(number + 1): \(machineRoot): \(line)")
                    }
                    searchStart = range.upperBound
                }
            }
        }
        return found
    }

    @Test("the rule finds machine paths and lets system paths through")
    func ruleIsPrecise() {
        for bad in [
            "see " + "/" + "work/main/docs", "\"" + "/" + "home/ci/x\"", "`" + "/Users/me/refund`", "(" + "/tmp/refund-data)",
            "--data-dir=" + "/tmp/x", "path: " + "/var/folders/ab/T/x", "C:" + "\\Users\\me", "../" + "shared/contract/README.md",
        ] {
            #expect(!Self.findings(in: bad).isEmpty, "\(bad)")
        }
        for good in [
            "/proc/self/status", "open(\"/dev/null\")", "ReadWritePaths=/var/lib/refundd", "./tmp/x", "$HOME/tmp/x",
            "Tests/work/x", "https://example.com/home/x", "NSTemporaryDirectory() + \"x\"", "a.b/tmp/c", "/usr/bin/swift",
        ] {
            #expect(Self.findings(in: good).isEmpty, "\(good)")
        }
    }

    @Test("no absolute path of one machine anywhere in the repository")
    func noMachinePaths() {
        let files = Self.textFiles()
        // Guard against a wrong root making the test pass on nothing.
        #expect(files.count > 100)
        #expect(files.contains { $0.path == "docs/contract.md" })
        #expect(files.contains { $0.path == "Sources/RefundEngine/Engine/Engine.swift" })
        let thisFile = "Tests/RefundEngineTests/RepositoryHygieneTests.swift"  // it spells the patterns out
        for file in files where file.path != thisFile {
            let found = Self.findings(in: file.text)
            #expect(found.isEmpty, "\(file.path):\n\(found.joined(separator: "\n"))")
        }
    }

    @Test("every relative link in the docs and the README points at a file that exists")
    func relativeLinksResolve() throws {
        let documents = Self.textFiles().filter { $0.path.hasSuffix(".md") && !$0.path.hasPrefix("Tests/") }
        #expect(documents.contains { $0.path == "README.md" })
        let link = try Regex(#"\]\(([^)\s]+)\)"#)
        for document in documents {
            let directory = (document.path as NSString).deletingLastPathComponent
            for match in document.text.matches(of: link) {
                guard let target = match.output[1].substring.map(String.init) else { continue }
                if target.contains("://") || target.hasPrefix("#") || target.hasPrefix("mailto:")
                    || target.hasPrefix("doc:") || target.hasPrefix("<doc:")
                {
                    continue
                }
                let file = String(target.split(separator: "#", maxSplits: 1)[0])
                let path = Self.root.appendingPathComponent(directory).appendingPathComponent(file).standardized.path
                #expect(FileManager.default.fileExists(atPath: path), "\(document.path) links to \(target), which is not there")
            }
        }
    }

    @Test("the version constants agree with the engine and the changelog")
    func versions() throws {
        #expect(RefundEngineVersion.dataDirectoryLayout == Engine.layoutVersion)
        let changelog = try String(contentsOf: Self.root.appendingPathComponent("CHANGELOG.md"), encoding: .utf8)
        let releases = changelog.split(separator: "\n").filter { $0.hasPrefix("## ") }
        let latest = try #require(releases.first { !$0.contains("Unreleased") })
        #expect(latest.hasPrefix("## \(RefundEngineVersion.current)"), "CHANGELOG.md's latest release is \(latest)")
    }
}
