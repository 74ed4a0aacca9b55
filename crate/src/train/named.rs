//! A trained module's parameters (or their gradients) under their checkpoint names, in
//! PyTorch's layout: what is written back to a checkpoint and compared with the reference.

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Gradients, Tensor};

use crate::model::ParamNames;

/// One tensor under its checkpoint key, values in PyTorch's layout (row-major, Linear weights
/// [out, in]).
#[derive(Clone, Debug, PartialEq)]
pub struct NamedTensor {
    pub key: String,
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

/// The named parameters of `module`, sorted by key.
pub fn named_parameters<M: Module>(module: &M, names: &ParamNames) -> Vec<NamedTensor> {
    collect(module, names, None)
}

/// The gradients in `grads` of the named parameters of `module`, sorted by key; a parameter the
/// loss does not reach has none and is left out.
pub fn named_gradients<M: Module>(
    module: &M,
    names: &ParamNames,
    grads: &Gradients,
) -> Vec<NamedTensor> {
    collect(module, names, Some(grads))
}

fn collect<M: Module>(
    module: &M,
    names: &ParamNames,
    grads: Option<&Gradients>,
) -> Vec<NamedTensor> {
    let mut visitor = Collect {
        names,
        grads,
        out: Vec::new(),
    };
    module.visit(&mut visitor);
    visitor.out.sort_by(|a, b| a.key.cmp(&b.key));
    visitor.out
}

struct Collect<'a> {
    names: &'a ParamNames,
    grads: Option<&'a Gradients>,
    out: Vec<NamedTensor>,
}

impl ModuleVisitor for Collect<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let Some(name) = self.names.get(&param.id) else {
            return;
        };
        let tensor = match self.grads {
            None => param.val(),
            Some(grads) => match param.val().grad(grads) {
                Some(grad) => grad,
                None => return,
            },
        };
        let tensor = if name.transposed {
            tensor.transpose()
        } else {
            tensor
        };
        let data = tensor.into_data().convert::<f32>();
        self.out.push(NamedTensor {
            key: name.key.clone(),
            shape: data.shape().to_vec(),
            values: data
                .try_to_vec::<f32>()
                .expect("converted to f32 just above"),
        });
    }
}
