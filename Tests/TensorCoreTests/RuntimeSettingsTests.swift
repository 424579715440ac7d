// RuntimeSettings: parsing the GKNET_* variables (defaults, values, values that do not parse).
import GKNetTensorCore
import Testing

@Suite struct RuntimeSettingsTests {
    @Test func emptyEnvironmentGivesTheDefaults() {
        let settings = RuntimeSettings(environment: [:])
        #expect(settings == RuntimeSettings())
        #expect(settings.threads == nil && settings.threadCount >= 1)
        #expect(settings.threadPool == .dispatch)
        #expect(settings.mallocTuning && settings.winogradWeightCache && !settings.profile)
        #expect(settings.winogradMinimumTiles == nil && settings.convolutionTuning)
        #expect(settings.model == nil)
    }

    @Test func everyVariableIsRead() {
        let settings = RuntimeSettings(environment: [
            "GKNET_THREADS": "3", "GKNET_THREAD_POOL": "openmp", "GKNET_MALLOC_TUNING": "0",
            "GKNET_WINOGRAD_MIN_TILES": "0", "GKNET_WINOGRAD_WEIGHT_CACHE": "0", "GKNET_PROFILE": "1",
            "GKNET_MODEL": "run/best.safetensors", "GKNET_API_KEY": "k", "GKNET_CONV_TUNING": "0",
        ])
        #expect(settings.threads == 3 && settings.threadCount == 3)
        #expect(settings.threadPool == .openMP)
        #expect(!settings.mallocTuning && !settings.winogradWeightCache && settings.profile)
        #expect(settings.winogradMinimumTiles == 0 && !settings.convolutionTuning)
        #expect(settings.model == "run/best.safetensors" && settings.apiKey == "k")
        #expect(Set(RuntimeSettings.Variable.allCases.map(\.rawValue)).count == 9)
    }

    @Test func valuesThatDoNotParseKeepTheDefaults() {
        let settings = RuntimeSettings(environment: [
            "GKNET_THREADS": "many", "GKNET_THREAD_POOL": "gomp", "GKNET_WINOGRAD_MIN_TILES": "",
            "GKNET_PROFILE": "0", "GKNET_MODEL": "", "GKNET_API_KEY": "",
        ])
        #expect(settings == RuntimeSettings())
        #expect(RuntimeSettings(environment: ["GKNET_THREADS": "0"]).threadCount == 1)
    }
}

@Suite struct OpenBLASCoreTests {
    @Test func aFallbackCoreIsCorrectedToWhatTheProcessorRuns() {
        let avx512: Set<String> = ["sse3", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512dq"]
        #expect(OpenBLASCore.correctedCoreType(chosen: "Prescott", flags: avx512) == "SkylakeX")
        #expect(OpenBLASCore.correctedCoreType(chosen: "Nehalem", flags: ["avx", "avx2", "fma"]) == "Haswell")
        // AVX-512 F alone (no BW/VL/DQ) is not enough for the SkylakeX kernels
        #expect(OpenBLASCore.correctedCoreType(chosen: "Prescott", flags: ["avx2", "fma", "avx512f"]) == "Haswell")
        #expect(OpenBLASCore.correctedCoreType(chosen: "Prescott", flags: ["sse3", "ssse3"]) == nil)
        // a core OpenBLAS recognised is kept, whatever the flags (AMD Zen 4 has AVX-512 too)
        #expect(OpenBLASCore.correctedCoreType(chosen: "Zen", flags: avx512) == nil)
        #expect(OpenBLASCore.correctedCoreType(chosen: "SkylakeX", flags: avx512) == nil)
        #expect(OpenBLASCore.correctedCoreType(chosen: nil, flags: avx512) == nil)
    }
}
