/// The one owner of an attachment's life: attach, run `body` with the attachments, then undo the
/// journal — whether `body` returned, threw or was cancelled.
///
/// Every change kvm-launch makes to the container's network happens inside this scope, so there
/// is exactly one teardown path; nothing between the attach and the teardown can skip it.
extension Attacher {
    /// What a scope that ran to the end produced, and what its teardown could not undo.
    package struct ScopeResult<Value> {
        package var value: Value
        /// Undo steps that failed (empty when the container is as it was).
        package var teardownProblems: [UndoProblem]
    }

    /// `body` failed; the journal was undone afterwards.
    package struct ScopeFailure: Error, CustomStringConvertible {
        /// What `body` threw, as thrown.
        package var cause: any Error
        /// Undo steps that failed (empty when the container is as it was).
        package var teardownProblems: [UndoProblem]

        package var description: String {
            "\(cause) (\(UndoProblem.summary(teardownProblems, clean: "the container's network is restored")))"
        }
    }

    /// Attaches `plan` (all or nothing, see ``apply(_:)``), runs `body`, then tears down.
    ///
    /// - Throws: ``AttachError`` when the attach itself failed (already rolled back);
    ///   ``ScopeFailure`` when `body` threw (torn down afterwards).
    package func withAttachment<Value>(
        _ plan: AttachPlan,
        _ body: ([Attachment]) async throws -> Value
    ) async throws -> ScopeResult<Value> {
        let attachments = try apply(plan)
        let value: Value
        do {
            value = try await body(attachments)
        } catch {
            throw ScopeFailure(cause: error, teardownProblems: teardown())
        }
        return ScopeResult(value: value, teardownProblems: teardown())
    }
}
