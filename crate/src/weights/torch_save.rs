//! Writing a state dict of f32 tensors as `torch.save` does (the zip format PyTorch has used
//! since 1.6), so that `torch.load(path, weights_only=True)` and the original ListConRanker code
//! read what training writes (`linear_in_embedding.pt`, `list_transformer.pt`).
//!
//! Hand-written because no Rust library writes PyTorch's pickles: the tensors are pickled as
//! `torch._utils._rebuild_tensor_v2` calls whose storages are persistent ids (`BINPERSID`)
//! pointing at raw little-endian records of the zip, which general pickle writers cannot emit.
//! The pickle uses only what PyTorch's weights-only unpickler allows: `collections.OrderedDict`,
//! `torch._utils._rebuild_tensor_v2` and `torch.FloatStorage`.

use std::io::{Cursor, Write};

use zip::CompressionMethod;
use zip::write::{SimpleFileOptions, ZipWriter};

use crate::error::{Error, Result};

/// One tensor of a state dict: its key, shape and row-major values.
pub struct StateTensor<'a> {
    pub key: &'a str,
    pub shape: &'a [usize],
    pub values: &'a [f32],
}

/// The bytes of a `torch.save(OrderedDict(...))` file holding `tensors` in order, in f32.
/// `archive` names the zip's top directory (PyTorch uses the file's stem; any name loads).
pub fn torch_save_bytes(archive: &str, tensors: &[StateTensor]) -> Result<Vec<u8>> {
    for t in tensors {
        let elements: usize = t.shape.iter().product();
        if elements != t.values.len() {
            return Err(Error::input(format!(
                "tensor `{}` of shape {:?} has {} values",
                t.key,
                t.shape,
                t.values.len()
            )));
        }
    }
    let fail = |e: zip::result::ZipError| Error::input(format!("writing a PyTorch file: {e}"));
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    // Stored, not compressed, with records aligned to 64 bytes as torch.save aligns them
    // (so that torch.load can memory-map them).
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Stored)
        .with_alignment(64);
    let mut put = |name: String, bytes: &[u8]| -> Result<()> {
        zip.start_file(name, options).map_err(fail)?;
        zip.write_all(bytes)
            .map_err(|e| Error::input(format!("writing a PyTorch file: {e}")))
    };
    put(format!("{archive}/data.pkl"), &state_dict_pickle(tensors))?;
    put(format!("{archive}/byteorder"), b"little")?;
    for (index, t) in tensors.iter().enumerate() {
        let bytes: Vec<u8> = t.values.iter().flat_map(|v| v.to_le_bytes()).collect();
        put(format!("{archive}/data/{index}"), &bytes)?;
    }
    put(format!("{archive}/version"), b"3\n")?;
    Ok(zip.finish().map_err(fail)?.into_inner())
}

/// The pickle (protocol 2) of an `OrderedDict` of tensors, tensor i's storage being the zip
/// record `data/i`.
fn state_dict_pickle(tensors: &[StateTensor]) -> Vec<u8> {
    let mut p = Pickle(vec![0x80, 2]); // PROTO 2
    p.global("collections", "OrderedDict");
    p.0.extend_from_slice(b")R"); // EMPTY_TUPLE, REDUCE: OrderedDict()
    p.0.push(b'('); // MARK
    for (index, t) in tensors.iter().enumerate() {
        p.string(t.key);
        p.global("torch._utils", "_rebuild_tensor_v2");
        p.0.push(b'('); // MARK: the arguments
        // The storage: persistent id ('storage', FloatStorage, key, location, numel).
        p.0.push(b'(');
        p.string("storage");
        p.global("torch", "FloatStorage");
        p.string(&index.to_string());
        p.string("cpu");
        p.int(t.values.len());
        p.0.push(b't'); // TUPLE
        p.0.push(b'Q'); // BINPERSID
        p.int(0); // storage offset
        p.tuple(t.shape);
        p.tuple(&contiguous_strides(t.shape));
        p.0.push(0x89); // NEWFALSE: requires_grad
        p.global("collections", "OrderedDict");
        p.0.extend_from_slice(b")R"); // backward hooks: OrderedDict()
        p.0.push(b't'); // TUPLE
        p.0.push(b'R'); // REDUCE
    }
    p.0.push(b'u'); // SETITEMS
    p.0.push(b'.'); // STOP
    p.0
}

fn contiguous_strides(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        strides[i] = strides[i + 1] * shape[i + 1];
    }
    strides
}

struct Pickle(Vec<u8>);

impl Pickle {
    fn global(&mut self, module: &str, name: &str) {
        self.0.push(b'c');
        self.0.extend_from_slice(module.as_bytes());
        self.0.push(b'\n');
        self.0.extend_from_slice(name.as_bytes());
        self.0.push(b'\n');
    }

    fn string(&mut self, s: &str) {
        self.0.push(b'X'); // BINUNICODE: u32 length, UTF-8
        self.0.extend_from_slice(&(s.len() as u32).to_le_bytes());
        self.0.extend_from_slice(s.as_bytes());
    }

    fn int(&mut self, n: usize) {
        if n < 256 {
            self.0.push(b'K'); // BININT1
            self.0.push(n as u8);
        } else if let Ok(n) = i32::try_from(n) {
            self.0.push(b'J'); // BININT: i32
            self.0.extend_from_slice(&n.to_le_bytes());
        } else {
            self.0.push(0x8a); // LONG1: 8 little-endian bytes (two's complement, positive)
            self.0.push(9);
            self.0.extend_from_slice(&(n as u64).to_le_bytes());
            self.0.push(0);
        }
    }

    fn tuple(&mut self, values: &[usize]) {
        self.0.push(b'(');
        for &v in values {
            self.int(v);
        }
        self.0.push(b't');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strides_are_row_major() {
        assert_eq!(contiguous_strides(&[2, 3, 4]), [12, 4, 1]);
        assert_eq!(contiguous_strides(&[5]), [1]);
        assert!(contiguous_strides(&[]).is_empty());
    }

    #[test]
    fn a_tensor_whose_values_do_not_fill_its_shape_is_refused() {
        let t = StateTensor {
            key: "w",
            shape: &[2, 2],
            values: &[1.0, 2.0, 3.0],
        };
        assert!(torch_save_bytes("x", &[t]).is_err());
    }
}
