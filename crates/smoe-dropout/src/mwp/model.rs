//! A small post-LN transformer encoder–decoder for question → prefix equation, its
//! feed-forward blocks dense or MoE in both stacks (BERT is an encoder; the
//! decoder is the smallest generator of equations that keeps the comparison about
//! the feed-forward blocks).

use candle_core::{D, DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use serde::{Deserialize, Serialize};
use sparse_core::kernels::Activation;
use sparse_repro::HarnessError;
use sparse_repro::models::attention::MultiHeadAttention;
use sparse_repro::rng::derive_seed;

use crate::error::Result;
use crate::layers::{
    Embedding, FeedForward, FeedForwardKind, FfnSpec, Linear, Norm, check_transformer, init_weights,
};
use crate::mode::Mode;
use crate::moe::MoeLayer;
use crate::mwp::data::{BOS, EOS};

/// The encoder–decoder's sizes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Seq2SeqSpec {
    /// Source vocabulary (0: the data's).
    pub source_vocab: usize,
    /// Target vocabulary (0: the data's).
    pub target_vocab: usize,
    /// The longest source.
    pub max_source: usize,
    /// The longest decoder input (0: the data's).
    pub max_target: usize,
    /// Model width d.
    pub dim: usize,
    /// Attention heads.
    pub heads: usize,
    /// Encoder layers.
    pub encoder_layers: usize,
    /// Decoder layers.
    pub decoder_layers: usize,
    /// Experts N (the dense block has `N · h` units).
    pub num_experts: usize,
    /// Hidden units per expert h.
    pub expert_hidden: usize,
    /// Dropout after embeddings and sublayers, and inside experts.
    pub dropout: f64,
    /// The feed-forward blocks.
    pub ffn: FeedForwardKind,
}

impl Seq2SeqSpec {
    /// The feed-forward blocks' sizes.
    pub fn ffn_spec(&self) -> FfnSpec {
        FfnSpec {
            dim: self.dim,
            num_experts: self.num_experts,
            expert_hidden: self.expert_hidden,
            kind: self.ffn,
        }
    }

    /// Checks every size (vocabularies and target length may be 0: the data's).
    pub fn validate(&self) -> Result<()> {
        check_transformer(
            &[
                ("max_source", self.max_source),
                ("encoder_layers", self.encoder_layers),
                ("decoder_layers", self.decoder_layers),
            ],
            self.heads,
            self.dropout,
            &self.ffn_spec(),
        )
    }
}

#[derive(Debug, Clone)]
struct EncoderBlock {
    attention: MultiHeadAttention,
    ln_attention: Norm,
    ffn: FeedForward,
    ln_ffn: Norm,
}

#[derive(Debug, Clone)]
struct DecoderBlock {
    attention: MultiHeadAttention,
    ln_attention: Norm,
    cross: MultiHeadAttention,
    ln_cross: Norm,
    ffn: FeedForward,
    ln_ffn: Norm,
}

/// The encoder–decoder.
#[derive(Debug, Clone)]
pub struct Seq2Seq {
    spec: Seq2SeqSpec,
    source: Embedding,
    target: Embedding,
    encoder: Vec<EncoderBlock>,
    decoder: Vec<DecoderBlock>,
    head: Linear,
}

impl Seq2Seq {
    /// Builds the model (every size given) in a new `VarMap`, initialised from `seed`
    /// as the language model is.
    pub fn build(spec: Seq2SeqSpec, seed: u64, device: &Device) -> Result<(VarMap, Self)> {
        spec.validate()?;
        for (name, value) in [
            ("source_vocab", spec.source_vocab),
            ("target_vocab", spec.target_vocab),
            ("max_target", spec.max_target),
        ] {
            if value == 0 {
                return Err(HarnessError::invalid(name, value, "must be positive").into());
            }
        }
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
        let d = spec.dim;
        let ffn = spec.ffn_spec();
        let routes =
            |stack: &str, layer: usize| derive_seed(seed, &format!("eval-routes-{stack}-{layer}"));
        let encoder = (0..spec.encoder_layers)
            .map(|layer| {
                let vb = vb.pp(format!("encoder.{layer}"));
                Ok(EncoderBlock {
                    attention: MultiHeadAttention::new(d, spec.heads, vb.pp("attention"))?,
                    ln_attention: Norm::new(d, vb.pp("ln_attention"))?,
                    ffn: FeedForward::new(&ffn, routes("encoder", layer), vb.pp("ffn"))?,
                    ln_ffn: Norm::new(d, vb.pp("ln_ffn"))?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let decoder = (0..spec.decoder_layers)
            .map(|layer| {
                let vb = vb.pp(format!("decoder.{layer}"));
                Ok(DecoderBlock {
                    attention: MultiHeadAttention::new(d, spec.heads, vb.pp("attention"))?,
                    ln_attention: Norm::new(d, vb.pp("ln_attention"))?,
                    cross: MultiHeadAttention::new(d, spec.heads, vb.pp("cross"))?,
                    ln_cross: Norm::new(d, vb.pp("ln_cross"))?,
                    ffn: FeedForward::new(&ffn, routes("decoder", layer), vb.pp("ffn"))?,
                    ln_ffn: Norm::new(d, vb.pp("ln_ffn"))?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let model = Self {
            spec,
            source: Embedding::new(spec.source_vocab, spec.max_source, d, vb.pp("source"))?,
            target: Embedding::new(spec.target_vocab, spec.max_target, d, vb.pp("target"))?,
            encoder,
            decoder,
            head: Linear::new(d, spec.target_vocab, vb.pp("head"))?,
        };
        init_weights(&varmap, seed)?;
        Ok((varmap, model))
    }

    /// The model's sizes.
    pub fn spec(&self) -> &Seq2SeqSpec {
        &self.spec
    }

    /// The encoder's output `[batch, s, d]` for `source: [batch, s]` whose real
    /// tokens `keep: [batch, s]` marks with 1.
    pub fn encode(
        &self,
        source: &Tensor,
        keep: &Tensor,
        k: usize,
        mode: &mut Mode,
    ) -> Result<Tensor> {
        let mut x = self.source.forward(source, mode)?;
        for block in &self.encoder {
            let attended = block.attention.forward(&x, None, false, Some(keep))?;
            x = block.ln_attention.residual(&x, &attended, mode)?;
            let fed = block.ffn.forward_sequence(&x, k, mode)?;
            x = block.ln_ffn.residual(&x, &fed, mode)?;
        }
        Ok(x)
    }

    /// The logits `[batch · t, target vocab]` after each position of the decoder
    /// input `target: [batch, t]`, reading `memory` (masked by `keep`).
    pub fn decode(
        &self,
        memory: &Tensor,
        keep: &Tensor,
        target: &Tensor,
        k: usize,
        mode: &mut Mode,
    ) -> Result<Tensor> {
        let (batch, length) = target.dims2()?;
        let mut x = self.target.forward(target, mode)?;
        for block in &self.decoder {
            let attended = block.attention.forward(&x, None, true, None)?;
            x = block.ln_attention.residual(&x, &attended, mode)?;
            let read = block.cross.forward(&x, Some(memory), false, Some(keep))?;
            x = block.ln_cross.residual(&x, &read, mode)?;
            let fed = block.ffn.forward_sequence(&x, k, mode)?;
            x = block.ln_ffn.residual(&x, &fed, mode)?;
        }
        self.head.forward(
            &x.reshape((batch * length, self.spec.dim))?,
            Activation::Identity,
        )
    }

    /// Greedy decoding: the target ids of each source (without the start token, up
    /// to and including the end token, or `max_target − 1` ids).
    pub fn greedy(&self, source: &Tensor, keep: &Tensor, k: usize) -> Result<Vec<Vec<u32>>> {
        let mut mode = Mode::Eval;
        let memory = self.encode(source, keep, k, &mut mode)?;
        let batch = source.dim(0)?;
        let mut outputs: Vec<Vec<u32>> = vec![Vec::new(); batch];
        let mut prefix: Vec<Vec<u32>> = vec![vec![BOS]; batch];
        for step in 0..self.spec.max_target - 1 {
            let flat: Vec<u32> = prefix.iter().flatten().copied().collect();
            let input = Tensor::from_vec(flat, (batch, step + 1), source.device())?;
            let logits = self.decode(&memory, keep, &input, k, &mut mode)?;
            let last = logits
                .reshape((batch, step + 1, self.spec.target_vocab))?
                .narrow(1, step, 1)?
                .squeeze(1)?;
            let best: Vec<u32> = last.argmax(D::Minus1)?.to_vec1()?;
            let mut open = false;
            for (b, &id) in best.iter().enumerate() {
                let finished = outputs[b].last() == Some(&EOS);
                let next = if finished { EOS } else { id };
                if !finished {
                    outputs[b].push(id);
                }
                prefix[b].push(next);
                open |= next != EOS;
            }
            if !open {
                break;
            }
        }
        Ok(outputs)
    }

    /// The MoE layers of both stacks, in order.
    pub fn moe_layers(&self) -> Vec<&MoeLayer> {
        self.encoder
            .iter()
            .map(|b| &b.ffn)
            .chain(self.decoder.iter().map(|b| &b.ffn))
            .filter_map(FeedForward::moe)
            .collect()
    }
}
