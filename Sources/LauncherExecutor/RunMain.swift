@_spi(ExperimentalCustomExecutors) import _Concurrency

#if canImport(Glibc)
import Glibc
#endif

/// Makes the one ``LauncherExecutor`` the process's main and default executor (the Swift 6.3
/// runtime's `ExecutorFactory`, still SPI): every global enqueue, main-actor job and `Task.sleep`
/// of the process goes to it.
enum LauncherExecutorFactory: ExecutorFactory {
    static let shared = LauncherExecutor(isMain: true)
    static var mainExecutor: any MainExecutor { shared }
    static var defaultExecutor: any TaskExecutor { shared }
}

extension LauncherExecutor {
    /// A synchronous `main`'s whole body: installs the executor before anything uses Swift
    /// concurrency, starts `body` as a task, and runs the executor on the calling (main) thread. Exits 0
    /// when `body` returns (a body that decides the status exits itself).
    ///
    /// Must come before the process's first task or continuation: the runtime makes its libdispatch
    /// executors on first use, and a job already handed to them stays there (and starts their pool).
    package static func runMain(_ body: @escaping @Sendable () async -> Void) -> Never {
        _createExecutors(factory: LauncherExecutorFactory.self)
        let executor = LauncherExecutorFactory.shared
        Task {
            await body()
            exit(0)
        }
        do {
            try executor.run()
        } catch {}
        exit(0)
    }
}
