//! The cost of an invocation: billed GB-seconds × the price per GB-second for the
//! architecture, plus the per-request price.

/// The CPU architecture the function runs on; it decides the price per GB-second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Architecture {
    /// x86_64.
    X86_64,
    /// arm64 (Graviton).
    Arm64,
}

impl Architecture {
    /// The architecture this binary was built for (an extension runs on its function's).
    pub fn current() -> Self {
        if cfg!(target_arch = "aarch64") { Self::Arm64 } else { Self::X86_64 }
    }

    /// Parses `x86_64`/`amd64`/`x86` or `arm64`/`aarch64`.
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "x86_64" | "amd64" | "x86" | "x64" => Some(Self::X86_64),
            "arm64" | "aarch64" | "arm" => Some(Self::Arm64),
            _ => None,
        }
    }

    /// The name used in attributes: `x86_64` or `arm64`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::X86_64 => "x86_64",
            Self::Arm64 => "arm64",
        }
    }
}

/// us-east-1 list price per GB-second on x86_64, in USD.
pub const X86_64_PRICE_PER_GB_SECOND: f64 = 0.000_016_666_7;
/// us-east-1 list price per GB-second on arm64, in USD.
pub const ARM64_PRICE_PER_GB_SECOND: f64 = 0.000_013_333_4;
/// us-east-1 list price per million requests, in USD.
pub const PRICE_PER_MILLION_REQUESTS: f64 = 0.20;

/// Prices used to compute cost.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pricing {
    /// USD per GB-second.
    pub per_gb_second: f64,
    /// USD per million requests.
    pub per_million_requests: f64,
}

impl Pricing {
    /// The default list prices for an architecture.
    pub fn for_architecture(architecture: Architecture) -> Self {
        let per_gb_second = match architecture {
            Architecture::X86_64 => X86_64_PRICE_PER_GB_SECOND,
            Architecture::Arm64 => ARM64_PRICE_PER_GB_SECOND,
        };
        Self { per_gb_second, per_million_requests: PRICE_PER_MILLION_REQUESTS }
    }

    /// The cost in USD of one invocation billed for `billed_duration_ms` at `memory_size_mb`.
    ///
    /// ```
    /// use flowtrace_extension::cost::{Architecture, Pricing};
    /// let cost = Pricing::for_architecture(Architecture::X86_64).invocation_cost(1000, 1024);
    /// assert!((cost - (0.0000166667 + 0.0000002)).abs() < 1e-12);
    /// ```
    pub fn invocation_cost(&self, billed_duration_ms: u64, memory_size_mb: u64) -> f64 {
        // u64 → f64 is exact well beyond any Lambda duration or memory size.
        #[allow(clippy::cast_precision_loss)]
        let gb_seconds = (billed_duration_ms as f64 / 1000.0) * (memory_size_mb as f64 / 1024.0);
        gb_seconds * self.per_gb_second + self.per_million_requests / 1_000_000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-15
    }

    #[test]
    fn x86_one_gb_second_plus_request() {
        let pricing = Pricing::for_architecture(Architecture::X86_64);
        assert!(close(pricing.invocation_cost(1000, 1024), 0.000_016_666_7 + 0.000_000_2));
    }

    #[test]
    fn arm_is_cheaper_per_gb_second() {
        let x86 = Pricing::for_architecture(Architecture::X86_64).invocation_cost(100, 128);
        let arm = Pricing::for_architecture(Architecture::Arm64).invocation_cost(100, 128);
        assert!(arm < x86);
        // 0.1 s × 0.125 GB = 0.0125 GB-s
        assert!(close(arm, 0.0125 * 0.000_013_333_4 + 0.000_000_2));
    }

    #[test]
    fn zero_billed_costs_only_the_request() {
        let pricing = Pricing { per_gb_second: 1.0, per_million_requests: 1_000_000.0 };
        assert!(close(pricing.invocation_cost(0, 128), 1.0));
    }

    #[test]
    fn architecture_names() {
        assert_eq!(Architecture::parse("AARCH64"), Some(Architecture::Arm64));
        assert_eq!(Architecture::parse("x86_64"), Some(Architecture::X86_64));
        assert_eq!(Architecture::parse("sparc"), None);
    }
}
