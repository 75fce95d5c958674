// swift-tools-version: 6.0
import PackageDescription

/// Kernels must vectorise: no errno on sqrt, AVX2+FMA at most (other hosts of this kind may lack AVX-512),
/// and `-O` even in debug builds so `swift test` runs the same code at a usable speed. With
/// LEANTUNE_WARNINGS_AS_ERRORS=1 (as `.ci/run` sets it) a warning in our own targets fails the build.
let kernelSettings: [SwiftSetting] =
    [
        .unsafeFlags(["-Xcc", "-fno-math-errno", "-target-cpu", "haswell"]),
        .unsafeFlags(["-O"], .when(configuration: .debug)),
    ] + (Context.environment["LEANTUNE_WARNINGS_AS_ERRORS"] == "1" ? [.unsafeFlags(["-warnings-as-errors"])] : [])

let package = Package(
    name: "LeanTune",
    products: [
        .executable(name: "leantune", targets: ["leantune"]),
        .library(name: "LeanTuneCore", targets: ["TensorCore", "Llama", "Formats", "Methods", "Datasets", "Training"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-numerics", from: "1.1.1"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    ],
    targets: [
        .systemLibrary(
            name: "CBLAS", path: "Sources/CBLAS", pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]),
        .target(
            name: "TensorCore",
            dependencies: ["CBLAS", .product(name: "Numerics", package: "swift-numerics")],
            swiftSettings: kernelSettings),
        .target(name: "Llama", dependencies: ["TensorCore"], swiftSettings: kernelSettings),
        .target(name: "Formats", dependencies: ["Llama", "TensorCore"], swiftSettings: kernelSettings),
        .target(name: "Methods", dependencies: ["Llama", "TensorCore"], swiftSettings: kernelSettings),
        .target(name: "Datasets", dependencies: ["Formats", "Llama", "TensorCore"], swiftSettings: kernelSettings),
        .target(
            name: "Training",
            dependencies: [
                "Datasets", "Methods", "Formats", "Llama", "TensorCore", .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: kernelSettings),
        .executableTarget(
            name: "leantune",
            dependencies: [
                "Datasets", "Formats", "Llama", "Methods", "TensorCore", "Training",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: kernelSettings),
        .testTarget(name: "TensorCoreTests", dependencies: ["TensorCore"], swiftSettings: kernelSettings),
        .target(name: "TestSupport", dependencies: ["Llama", "TensorCore"], path: "Tests/TestSupport"),
        .testTarget(
            name: "LlamaTests", dependencies: ["Llama", "TensorCore", "TestSupport"], swiftSettings: kernelSettings),
        .testTarget(
            name: "FormatsTests", dependencies: ["Formats", "Llama", "TensorCore", "TestSupport"],
            swiftSettings: kernelSettings),
        .testTarget(
            name: "DatasetsTests", dependencies: ["Datasets", "Formats", "Llama", "TestSupport"],
            swiftSettings: kernelSettings),
        .testTarget(
            name: "TrainingTests",
            dependencies: ["Training", "Datasets", "Formats", "Methods", "Llama", "TestSupport"],
            swiftSettings: kernelSettings),
        .testTarget(
            name: "FuzzTests",
            dependencies: ["Training", "Methods", "Datasets", "Formats", "Llama", "TensorCore", "TestSupport"],
            swiftSettings: kernelSettings),
        .testTarget(
            name: "MethodsTests", dependencies: ["Methods", "Formats", "Llama", "TensorCore", "TestSupport"],
            swiftSettings: kernelSettings),
    ]
)
