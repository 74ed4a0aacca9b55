//! Choosing where the model runs and in which float type.

use std::fmt;
use std::str::FromStr;

use burn::tensor::{Device, FloatDType};

use crate::error::{Error, Result};

/// Which burn backend runs the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    /// burn's `flex` CPU backend.
    #[default]
    Cpu,
    /// wgpu: Vulkan, Metal or DX12 natively, WebGPU in the browser.
    Wgpu,
}

/// Float type of weights and activations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    #[default]
    F32,
    F16,
}

impl Backend {
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
    pub fn float_dtype(self) -> FloatDType {
        match self {
            Precision::F32 => FloatDType::F32,
            Precision::F16 => FloatDType::F16,
        }
    }
}

impl FromStr for Backend {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "cpu" => Ok(Backend::Cpu),
            "wgpu" | "gpu" | "webgpu" => Ok(Backend::Wgpu),
            other => Err(Error::input(format!(
                "unknown device `{other}` (expected cpu or wgpu)"
            ))),
        }
    }
}

impl FromStr for Precision {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "f32" | "fp32" => Ok(Precision::F32),
            "f16" | "fp16" => Ok(Precision::F16),
            other => Err(Error::input(format!(
                "unknown dtype `{other}` (expected f32 or f16)"
            ))),
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Cpu => "cpu",
            Backend::Wgpu => "wgpu",
        })
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Precision::F32 => "f32",
            Precision::F16 => "f16",
        })
    }
}

/// Opens the backend's device (native). wgpu picks the default adapter; an error, not a panic,
/// when there is none.
#[cfg(feature = "native")]
pub fn open_device(backend: Backend) -> Result<Device> {
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

/// Checks that `device` can compute in `precision` (f16 needs e.g. WebGPU's `shader-f16`).
pub fn check_precision(device: &Device, backend: Backend, precision: Precision) -> Result<()> {
    if device.supports_dtype(precision.float_dtype()) {
        Ok(())
    } else {
        Err(Error::DeviceUnavailable(format!(
            "the {backend} device does not support {precision}"
        )))
    }
}

/// Opens the backend's device in the browser (wasm32): WebGPU through burn's asynchronous
/// initialiser (the only one browsers allow), once per worker; flex needs no initialisation.
/// The threaded build has no WebGPU and says so.
#[cfg(feature = "wasm-bindings")]
pub async fn open_device_async(backend: Backend) -> Result<Device> {
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
        .map_err(|e| Error::DeviceUnavailable(format!("WebGPU: {e}")))?;
    WEBGPU.with(|d| *d.borrow_mut() = Some(device.clone()));
    Ok(device)
}

#[cfg(all(feature = "wasm-bindings", not(feature = "wasm")))]
async fn open_webgpu() -> Result<Device> {
    Err(Error::DeviceUnavailable(
        "WebGPU: this is the threaded CPU build, which has no WebGPU backend".into(),
    ))
}
