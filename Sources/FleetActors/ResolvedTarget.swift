import Distributed
import Synchronization

/// A distributed function of this process, worked out once from its mangled name: its
/// argument types and its result type.
///
/// `executeDistributedTarget(on:target:invocationDecoder:handler:)` demangles the target's
/// name three times on every call (for the parameter count, the parameter types and the
/// return type), which was about a third of the CPU a served call cost. A resolved target does
/// that once per process and then calls the runtime's entry point for the function directly.
/// Generic targets, and names this process cannot resolve, take the standard path, which
/// reports their errors.
///
/// `@unchecked Sendable`: every stored property is set in `init` and never written again; the
/// two buffers are allocated and filled there, and only read afterwards.
final class ResolvedTarget: @unchecked Sendable {
    /// The mangled name, as the runtime looks it up.
    private let name: UnsafeMutableBufferPointer<UInt8>
    /// One metatype per parameter, in order; the runtime decodes the arguments as these.
    private let argumentTypes: UnsafeMutableBufferPointer<any Any.Type>
    private let result: Result

    private enum Result {
        case void
        case value(any Codable.Type)
    }

    /// The most targets kept; a peer that sends many distinct names gets the standard path for
    /// the rest, so the cache cannot grow without bound.
    static let capacity = 4_096
    private static let cache = Mutex<[String: ResolvedTarget]>([:])

    /// The resolved target for `identifier`, or `nil` when it must take the standard path
    /// (generic, unknown to this process, or the cache is full).
    static func named(_ identifier: String) -> ResolvedTarget? {
        if let known = cache.withLock({ $0[identifier] }) { return known }
        guard let resolved = ResolvedTarget(identifier) else { return nil }
        return cache.withLock { cache in
            if let known = cache[identifier] { return known }
            guard cache.count < capacity else { return nil }
            cache[identifier] = resolved
            return resolved
        }
    }

    private init(name: UnsafeMutableBufferPointer<UInt8>, argumentTypes: UnsafeMutableBufferPointer<any Any.Type>, result: Result) {
        self.name = name
        self.argumentTypes = argumentTypes
        self.result = result
    }

    /// Asks the runtime for the target's types; `nil` for a generic target or a name this
    /// process cannot resolve.
    private convenience init?(_ identifier: String) {
        let utf8 = Array(identifier.utf8)
        guard !utf8.isEmpty else { return nil }
        let name = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: utf8.count)
        _ = name.initialize(from: utf8)
        let base = UnsafePointer(name.baseAddress!)
        let length = UInt(name.count)
        let isGeneric = _getGenericEnvironmentOfDistributedTarget(base, length) != nil
        let count = isGeneric ? -1 : __getParameterCount(base, length)
        // At least one element, so that the buffer has an address to hand the runtime.
        let argumentTypes = UnsafeMutableBufferPointer<any Any.Type>.allocate(capacity: max(1, Int(count)))
        let result: Result? = {
            guard count >= 0,
                  __getParameterTypeInfo(base, length, nil, nil, argumentTypes.baseAddress!._rawValue, Int(count)) == count,
                  let returnType = __getReturnTypeInfo(base, length, nil, nil)
            else { return nil }
            if returnType == Void.self { return .void }
            return (returnType as? any Codable.Type).map { .value($0) }
        }()
        guard let result else {
            name.deallocate()
            argumentTypes.deallocate()
            return nil
        }
        self.init(name: name, argumentTypes: argumentTypes, result: result)
    }

    deinit {
        name.deallocate()
        argumentTypes.deallocate()
    }

    /// Runs the function on `actor` with the arguments `invocation` holds and hands the outcome
    /// to `handler`: the returned value, `Void`, or the thrown error (which includes arguments
    /// that could not be decoded).
    func execute(
        on actor: any DistributedActor, invocation: inout FleetInvocationDecoder, handler: FleetResultHandler
    ) async {
        switch result {
        case .void:
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 1)
            defer { buffer.deallocate() }
            do {
                try await run(on: actor, invocation: &invocation, into: buffer)
            } catch {
                return handler.send(thrown: error)
            }
            handler.sendVoid()
        case let .value(type):
            await execute(on: actor, invocation: &invocation, handler: handler, returning: type)
        }
    }

    private func execute<Value: Codable>(
        on actor: any DistributedActor, invocation: inout FleetInvocationDecoder, handler: FleetResultHandler,
        returning: Value.Type
    ) async {
        let buffer = UnsafeMutablePointer<Value>.allocate(capacity: 1)
        defer { buffer.deallocate() }
        do {
            try await run(on: actor, invocation: &invocation, into: UnsafeMutableRawPointer(buffer))
        } catch {
            return handler.send(thrown: error)
        }
        handler.send(value: buffer.move())
    }

    private func run(
        on actor: any DistributedActor, invocation: inout FleetInvocationDecoder, into result: UnsafeMutableRawPointer
    ) async throws {
        try await executeDistributedFunction(
            on: actor, UnsafePointer(name.baseAddress!), UInt(name.count), argumentDecoder: &invocation,
            argumentTypes: UnsafeRawPointer(argumentTypes.baseAddress!), resultBuffer: result,
            substitutions: nil, witnessTables: nil, numWitnessTables: 0)
    }
}

/// The Distributed runtime's entry point that finds a distributed function's accessor by its
/// mangled name and runs it: decodes the arguments through `argumentDecoder` as
/// `argumentTypes`, calls the function on `actor`, and writes its result to `resultBuffer`.
///
/// This is the declaration `executeDistributedTarget` itself calls (the Distributed module
/// keeps it internal); its pointer parameters are `Builtin.RawPointer` there, which has the
/// same layout and calling convention as the raw pointers here.
@_silgen_name("swift_distributed_execute_target")
private func executeDistributedFunction<D: DistributedTargetInvocationDecoder>(
    on actor: AnyObject,
    _ targetName: UnsafePointer<UInt8>, _ targetNameLength: UInt,
    argumentDecoder: inout D,
    argumentTypes: UnsafeRawPointer,
    resultBuffer: UnsafeMutableRawPointer,
    substitutions: UnsafeRawPointer?,
    witnessTables: UnsafeRawPointer?,
    numWitnessTables: UInt
) async throws
