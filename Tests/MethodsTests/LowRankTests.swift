import Testing
import Llama
import TensorCore
@testable import Methods

@Suite("GaLore and AdaRankGrad")
struct LowRankTests {
    static let layout = ParameterLayout(
        LlamaConfig(
            dim: 16, ffnDim: 40, layerCount: 1, headCount: 4, kvHeadCount: 2, vocabSize: 24, maxSequenceLength: 16))

    static func gradients(seed: UInt64) -> [[Float]] {
        layout.parameters.enumerated().map { id, info in
            var g = [Float](repeating: 0, count: info.count)
            g.withUnsafeMutableBufferPointer { Philox(seed: seed).fillNormal($0, stream: UInt64(id)) }
            return g
        }
    }

    static func settings(_ policy: LowRankAdam.Settings.Policy, transfer: Bool = false) -> LowRankAdam.Settings {
        var s = LowRankAdam.Settings()
        (s.policy, s.scale, s.transferMoments) = (policy, 1, transfer)
        return s
    }

    /// An SVD result whose singular vectors are the identity (so the projector is).
    static func identity(rows: Int, columns: Int) -> SVDResult {
        let k = min(rows, columns), ledger = MemoryLedger()
        let u = AlignedBuffer<Float>(count: rows * k, category: .workspace, ledger: ledger)
        let vt = AlignedBuffer<Float>(count: k * columns, category: .workspace, ledger: ledger)
        for i in 0..<k {
            u.pointer[i * k + i] = 1
            vt.pointer[i * columns + i] = 1
        }
        return SVDResult(rows: rows, columns: columns, rank: k, u: u, s: Array(repeating: 1, count: k), vt: vt)
    }

    @Test("GaLore with full rank, identity projectors and no refresh is AdamW, weight decay included")
    func fullRankIsAdamW() throws {
        // Every block matrix has 16 as its smaller side (k and v are 16×16 with four kv heads).
        let layout = ParameterLayout(
            LlamaConfig(
                dim: 16, ffnDim: 40, layerCount: 1, headCount: 4, kvHeadCount: 4, vocabSize: 24, maxSequenceLength: 16))
        let groups = ParameterGroups(weightDecay: 0.1)
        let adam = AdamW(layout: layout, epsilon: 1e-6, groups: groups, ledger: MemoryLedger())
        let galore = try LowRankAdam(
            layout: layout, settings: Self.settings(.fixed(rank: 16, interval: 1000)), groups: groups, seed: 1,
            ledger: MemoryLedger())
        for (id, info) in layout.parameters.enumerated() where info.role.isBlockMatrix {
            galore.install(Self.identity(rows: info.shape[0], columns: info.shape[1]), rank: info.shape.min()!, for: id)
        }
        func values(_ seed: UInt64) -> [[Float]] {
            layout.parameters.enumerated().map { id, info in
                var g = [Float](repeating: 0, count: info.count)
                g.withUnsafeMutableBufferPointer { Philox(seed: seed).fillNormal($0, stream: UInt64(id)) }
                return g
            }
        }
        let start = values(9)  // as weights
        var a = start, b = start
        for step in 1...3 {
            let g = values(UInt64(step))
            for id in layout.parameters.indices {
                a[id].withUnsafeMutableBufferPointer {
                    adam.update(id, weights: $0, gradient: g[id], learningRate: 1e-2, step: step)
                }
                b[id].withUnsafeMutableBufferPointer {
                    galore.update(id, weights: $0, gradient: g[id], learningRate: 1e-2, step: step)
                }
            }
        }
        for id in layout.parameters.indices {
            for (x, y) in zip(a[id], b[id]) {
                #expect(abs(x - y) <= 1e-6 * max(1, abs(x)), "\(layout.parameters[id].name)")
            }
            #expect(a[id] != start[id])
        }
    }

    @Test("after a refresh from a real gradient every projector is orthonormal (left and right projections)")
    func orthonormal() throws {
        let layout = Self.layout,
            galore = try LowRankAdam(
                layout: layout, settings: Self.settings(.fixed(rank: 6, interval: 2)),
                groups: ParameterGroups(weightDecay: 0), seed: 1, ledger: MemoryLedger())
        var w = Self.gradients(seed: 4)
        for step in 1...3 {
            let g = Self.gradients(seed: UInt64(10 + step))
            for id in layout.parameters.indices {
                w[id].withUnsafeMutableBufferPointer {
                    galore.update(id, weights: $0, gradient: g[id], learningRate: 1e-3, step: step)
                }
            }
        }
        var sides = Set<Bool>()
        for (id, info) in layout.parameters.enumerated() where info.role.isBlockMatrix {
            let s = try #require(galore.subspace(id)), r = s.rank, side = s.side
            sides.insert(s.left)
            #expect(r == 6)
            for c in 0..<r {
                for d in 0..<r {  // left: columns of P (side×r); right: rows of P (r×side)
                    var dot: Float = 0
                    for i in 0..<side {
                        dot +=
                            s.left
                            ? s.projector.pointer[i * r + c] * s.projector.pointer[i * r + d]
                            : s.projector.pointer[c * side + i] * s.projector.pointer[d * side + i]
                    }
                    #expect(abs(dot - (c == d ? 1 : 0)) <= 1e-5, "\(info.name) [\(c), \(d)]")
                }
            }
        }
        // down 16×40 and k, v 8×16 project on the left; gate, up 40×16 and q, o 16×16 on the right
        #expect(sides == [true, false])
        #expect(galore.refreshes == 2 * 7 && galore.failures == 0)  // steps 1 and 3 (T = 2), seven matrices
    }

    @Test("moment transfer is the identity when the subspace does not change")
    func transferIdentity() throws {
        let layout = Self.layout, id = layout.layers[0].up, info = layout.parameters[id]
        let galore = try LowRankAdam(
            layout: layout, settings: Self.settings(.fixed(rank: 5, interval: 1000), transfer: true),
            groups: ParameterGroups(weightDecay: 0), seed: 1, ledger: MemoryLedger())
        var w = Self.gradients(seed: 4)[id]
        for step in 1...2 {
            let g = Self.gradients(seed: UInt64(20 + step))[id]
            w.withUnsafeMutableBufferPointer {
                galore.update(id, weights: $0, gradient: g, learningRate: 1e-3, step: step)
            }
        }
        let s = try #require(galore.subspace(id))
        let (m, v) = (Array(s.m.buffer), Array(s.v.buffer))
        #expect(!s.left)  // 40×16: the projector is 5 rows of Vᵀ
        let rows = AlignedBuffer<Float>(count: s.projector.count, category: .workspace, ledger: MemoryLedger())
        rows.pointer.update(from: s.projector.pointer, count: rows.count)
        let same = SVDResult(
            rows: info.shape[0], columns: info.shape[1], rank: 5,
            u: AlignedBuffer(count: info.shape[0] * 5, category: .workspace, ledger: MemoryLedger()),
            s: Array(repeating: 1, count: 5), vt: rows)
        galore.install(same, rank: 5, for: id)
        #expect(m.contains { $0 != 0 })
        for (x, y) in zip(m, Array(s.m.buffer)) { #expect(abs(x - y) <= 1e-5 * m.map(abs).max()!) }
        for (x, y) in zip(v, Array(s.v.buffer)) { #expect(abs(x - y) <= 1e-5 * v.map(abs).max()!) }
    }

    @Test("AdaRankGrad picks the smallest rank that holds the energy threshold of ‖G‖²")
    func adaptiveRank() throws {
        let layout = Self.layout, id = layout.layers[0].gate, (rows, columns) = (40, 16)
        // G = 10·a₁b₁ᵀ + 5·a₂b₂ᵀ + 2·a₃b₃ᵀ with orthonormal a, b: energies 100, 25, 4 of 129.
        var g = [Float](repeating: 0, count: rows * columns)
        for (k, sigma) in [Float(10), 5, 2].enumerated() {
            for i in 0..<rows { for j in 0..<columns where i == 3 * k && j == 5 * k { g[i * columns + j] += sigma } }
        }
        for (threshold, expected) in [(Float(0.7), 1), (0.9, 2), (0.99, 3)] {
            let ada = try LowRankAdam(
                layout: layout,
                settings: Self.settings(
                    .adaptive(
                        minRank: 1, maxRank: 8, energy: threshold, capture: 0.5, minInterval: 1, maxInterval: 10)),
                groups: ParameterGroups(weightDecay: 0), seed: 1, ledger: MemoryLedger())
            var w = [Float](repeating: 0, count: rows * columns)
            w.withUnsafeMutableBufferPointer { ada.update(id, weights: $0, gradient: g, learningRate: 1e-3, step: 1) }
            #expect(ada.ranks[id] == expected, "η_th \(threshold)")
        }
    }

    @Test("a decomposition that cannot run (non-finite gradient) keeps what there is and is counted")
    func failedDecomposition() throws {
        let layout = Self.layout, id = layout.layers[0].up
        let galore = try LowRankAdam(
            layout: layout, settings: Self.settings(.fixed(rank: 4, interval: 1)),
            groups: ParameterGroups(weightDecay: 0), seed: 1, ledger: MemoryLedger())
        var w = Self.gradients(seed: 4)[id], g = Self.gradients(seed: 5)[id]
        let before = w
        g[7] = .nan
        w.withUnsafeMutableBufferPointer { galore.update(id, weights: $0, gradient: g, learningRate: 1e-3, step: 1) }
        #expect(galore.failures == 1 && galore.ranks[id] == 0 && w == before)
    }

    @Test(
        """
        optimizer state in the ledger is the formula: r·(min + 2·max) per block matrix, AdamW's 2 per value elsewhere, \
        none for frozen tensors
        """,
        arguments: [Set<ParameterGroup>(), [.embedding, .head, .attention]])
    func stateBytes(frozen: Set<ParameterGroup>) throws {
        let layout = Self.layout, ledger = MemoryLedger(), groups = ParameterGroups(weightDecay: 0, frozen: frozen)
        let galore = try LowRankAdam(
            layout: layout, settings: Self.settings(.fixed(rank: 6, interval: 10)), groups: groups, seed: 1,
            ledger: ledger)
        var w = Self.gradients(seed: 4)
        let g = Self.gradients(seed: 5)
        for id in layout.parameters.indices {
            w[id].withUnsafeMutableBufferPointer {
                galore.update(id, weights: $0, gradient: g[id], learningRate: 1e-3, step: 1)
            }
        }
        let projected = layout.parameters.filter { $0.role.isBlockMatrix && !groups.isFrozen($0.role) }
        #expect(projected.count < layout.parameters.filter { $0.role.isBlockMatrix }.count || frozen.isEmpty)
        let counters = 8 * projected.count  // steps and steps since refresh
        #expect(
            ledger.snapshot().current[.optimizerState] == LowRankAdam.stateBytes(layout, rank: 6, groups: groups)
                + counters)
        #expect(galore.diagnostics["state_bytes"] == Double(LowRankAdam.stateBytes(layout, rank: 6, groups: groups)))
    }

    @Test("settings out of range are refused: rank above a matrix's smaller side, η_th outside (0, 1], T ≤ 0")
    func badSettings() throws {
        for policy: LowRankAdam.Settings.Policy in [
            .fixed(rank: 17, interval: 10), .fixed(rank: 4, interval: 0),
            .adaptive(minRank: 1, maxRank: 4, energy: 1.5, capture: 0.5, minInterval: 1, maxInterval: 10),
            .adaptive(minRank: 1, maxRank: 4, energy: 0, capture: 0.5, minInterval: 1, maxInterval: 10),
            .adaptive(minRank: 5, maxRank: 4, energy: 0.9, capture: 0.5, minInterval: 1, maxInterval: 10),
        ] {
            #expect(throws: MethodError.self, "\(policy)") {
                try LowRankAdam(
                    layout: Self.layout, settings: Self.settings(policy), groups: ParameterGroups(weightDecay: 0),
                    seed: 1, ledger: MemoryLedger())
            }
        }
    }
}
