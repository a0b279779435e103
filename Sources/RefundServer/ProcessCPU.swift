#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The CPU this process has used (`getrusage(RUSAGE_SELF)`), reported by `stats`.
enum ProcessCPU {
    static func now() -> (user: Double, system: Double) {
        var usage = rusage()
        #if canImport(Glibc)
            guard getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage) == 0 else { return (0, 0) }
        #else
            guard getrusage(RUSAGE_SELF, &usage) == 0 else { return (0, 0) }
        #endif
        func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1_000_000 }
        return (seconds(usage.ru_utime), seconds(usage.ru_stime))
    }
}
