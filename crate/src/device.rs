//! Where the model runs and in which float type: chosen once, as [`LoadOptions`], and realised
//! once, as a [`Placement`] (the opened device, checked to compute in the precision asked for).
//! Every layer above takes the one `Placement` value, so device and precision never disagree.

use std::fmt;
use std::str::FromStr;

use burn::tensor::{Device, FloatDType};

use crate::error::{Error, Result};

/// Which burn backend runs the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Backend {
    /// burn's `flex` CPU backend.
    #[default]
    Cpu,
    /// wgpu: Vulkan, Metal or DX12 natively, WebGPU in the browser.
    #[cfg_attr(feature = "cli", value(alias = "webgpu", alias = "gpu"))]
    Wgpu,
}

/// Float type of weights and activations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Precision {
    #[default]
    #[cfg_attr(feature = "cli", value(alias = "fp32"))]
    F32,
    #[cfg_attr(feature = "cli", value(alias = "fp16"))]
    F16,
}

impl Backend {
    /// The names this backend answers to (the first is its own); the CLI's `ValueEnum` above
    /// lists the same aliases. The browser says `webgpu`.
    const NAMES: [(&'static [&'static str], Backend); 2] = [
        (&["cpu"], Backend::Cpu),
        (&["wgpu", "webgpu", "gpu"], Backend::Wgpu),
    ];

    pub fn name(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(_, b)| *b == self)
            .expect("listed")
            .0[0]
    }

    /// Padded tokens per encoder batch unless told otherwise. On the CPU small batches are
    /// fastest (less padding, matrices that stay in cache: 512 ran 1.8x faster than 16384 on a
    /// 20-passage list); GPUs want large batches to fill their cores.
    pub fn default_batch_tokens(self) -> usize {
        match self {
            Backend::Cpu => 512,
            Backend::Wgpu => 8192,
        }
    }
}

impl Precision {
    const NAMES: [(&'static [&'static str], Precision); 2] = [
        (&["f32", "fp32"], Precision::F32),
        (&["f16", "fp16"], Precision::F16),
    ];

    pub fn name(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(_, p)| *p == self)
            .expect("listed")
            .0[0]
    }

    pub fn float_dtype(self) -> FloatDType {
        match self {
            Precision::F32 => FloatDType::F32,
            Precision::F16 => FloatDType::F16,
        }
    }

    /// Bytes per stored value.
    pub fn bytes(self) -> usize {
        match self {
            Precision::F32 => 4,
            Precision::F16 => 2,
        }
    }
}

/// The parser of both enums' names for the library and the browser (the CLI's `ValueEnum`
/// takes the same names and aliases): looks `name` up in a `NAMES` table.
fn parse_name<T: Copy>(name: &str, names: &[(&[&str], T)], what: &str) -> Result<T> {
    names
        .iter()
        .find(|(aliases, _)| aliases.contains(&name))
        .map(|(_, value)| *value)
        .ok_or_else(|| {
            let known: Vec<&str> = names.iter().map(|(aliases, _)| aliases[0]).collect();
            Error::input(format!(
                "unknown {what} `{name}` (expected {})",
                known.join(" or ")
            ))
        })
}

impl FromStr for Backend {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        parse_name(s, &Self::NAMES, "device")
    }
}

impl FromStr for Precision {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        parse_name(s, &Self::NAMES, "dtype")
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a model is loaded and run: what the caller asks for.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub backend: Backend,
    pub precision: Precision,
    /// Tokens per text, `[CLS]` and `[SEP]` included; longer texts are truncated (default 512).
    pub max_length: usize,
    /// Padded tokens per encoder batch; `None` picks the backend's best
    /// ([`Backend::default_batch_tokens`]).
    pub batch_tokens: Option<usize>,
    /// Most passages in one list; `None`: the longest list whose list attention fits 1 GiB
    /// (2363 passages for the released model's 16 heads). Longer lists are refused before
    /// anything is allocated.
    pub max_passages: Option<usize>,
}

impl LoadOptions {
    pub fn effective_batch_tokens(&self) -> usize {
        self.batch_tokens
            .unwrap_or_else(|| self.backend.default_batch_tokens())
            .max(1)
    }
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            backend: Backend::Cpu,
            precision: Precision::F32,
            max_length: 512,
            batch_tokens: None,
            max_passages: None,
        }
    }
}

/// [`LoadOptions`] realised: the backend's device, opened and known to compute in the
/// precision asked for. Weights are uploaded to it in that precision.
#[derive(Clone, Debug)]
pub struct Placement {
    device: Device,
    options: LoadOptions,
}

impl Placement {
    /// Opens the options' device (native) and checks its precision.
    #[cfg(feature = "native")]
    pub fn open(options: LoadOptions) -> Result<Self> {
        let device = open_device(options.backend)?;
        Self::checked(device, options)
    }

    /// Opens the options' device without blocking (the browser: WebGPU only initialises
    /// asynchronously there) and checks its precision.
    #[cfg(feature = "wasm-bindings")]
    pub async fn open_async(options: LoadOptions) -> Result<Self> {
        let device = open_device_async(options.backend).await?;
        Self::checked(device, options)
    }

    fn checked(device: Device, options: LoadOptions) -> Result<Self> {
        if !device.supports_dtype(options.precision.float_dtype()) {
            return Err(unavailable(
                options.backend,
                format!(
                    "the {} device does not support {}",
                    options.backend, options.precision
                ),
            ));
        }
        Ok(Self { device, options })
    }

    /// The CPU device in f32, always available (no device to open).
    pub fn host_f32() -> Self {
        Self {
            device: Device::flex(),
            options: LoadOptions::default(),
        }
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The float type parameters and activations are computed in.
    pub fn dtype(&self) -> FloatDType {
        self.options.precision.float_dtype()
    }

    pub fn options(&self) -> &LoadOptions {
        &self.options
    }

    /// Changes the truncation length (checked by the caller against the model).
    pub(crate) fn set_max_length(&mut self, max_length: usize) {
        self.options.max_length = max_length;
    }
}

/// The error of a backend that cannot run: in the browser a missing or unfit WebGPU has its own
/// code, since the page can fall back to the CPU backend.
fn unavailable(backend: Backend, reason: String) -> Error {
    if cfg!(target_arch = "wasm32") && backend == Backend::Wgpu {
        Error::WebGpuUnavailable(reason)
    } else {
        Error::DeviceUnavailable(reason)
    }
}

/// Opens the backend's device (native). wgpu picks the default adapter; an error, not a panic,
/// when there is none.
#[cfg(feature = "native")]
fn open_device(backend: Backend) -> Result<Device> {
    use std::sync::OnceLock;
    // burn registers the wgpu runtime once per process: later models share that device.
    static WGPU: OnceLock<std::result::Result<Device, String>> = OnceLock::new();
    match backend {
        Backend::Cpu => Ok(Device::flex()),
        Backend::Wgpu => WGPU
            .get_or_init(|| {
                Device::wgpu_options()
                    .init()
                    .map_err(|e| format!("wgpu: {e}"))
            })
            .clone()
            .map_err(Error::DeviceUnavailable),
    }
}

/// Opens the backend's device in the browser (wasm32): WebGPU through burn's asynchronous
/// initialiser (the only one browsers allow), once per worker; flex needs no initialisation.
/// The threaded build has no WebGPU and says so.
#[cfg(feature = "wasm-bindings")]
async fn open_device_async(backend: Backend) -> Result<Device> {
    match backend {
        Backend::Cpu => Ok(Device::flex()),
        Backend::Wgpu => open_webgpu().await,
    }
}

#[cfg(feature = "wasm")]
async fn open_webgpu() -> Result<Device> {
    thread_local! {
        static WEBGPU: std::cell::RefCell<Option<Device>> = const { std::cell::RefCell::new(None) };
    }
    if let Some(device) = WEBGPU.with(|d| d.borrow().clone()) {
        return Ok(device);
    }
    let device = Device::wgpu_options()
        .init_async()
        .await
        .map_err(|e| unavailable(Backend::Wgpu, format!("WebGPU: {e}")))?;
    WEBGPU.with(|d| *d.borrow_mut() = Some(device.clone()));
    Ok(device)
}

#[cfg(all(feature = "wasm-bindings", not(feature = "wasm")))]
async fn open_webgpu() -> Result<Device> {
    Err(unavailable(
        Backend::Wgpu,
        "this is the threaded CPU build, which has no WebGPU backend".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_parser_knows_every_name_and_refuses_others() {
        for (name, backend) in [
            ("cpu", Backend::Cpu),
            ("wgpu", Backend::Wgpu),
            ("webgpu", Backend::Wgpu),
        ] {
            assert_eq!(name.parse::<Backend>().unwrap(), backend);
        }
        assert_eq!("fp16".parse::<Precision>().unwrap(), Precision::F16);
        assert_eq!(Backend::Wgpu.to_string(), "wgpu");
        assert_eq!(Precision::F16.to_string(), "f16");
        let e = "tpu".parse::<Backend>().unwrap_err();
        assert_eq!(e.code(), "INPUT_INVALID");
        assert!(e.to_string().contains("expected cpu or wgpu"), "{e}");
    }
}
