//! `listconranker train`: stage one of the model card's recipe on C-MTEB-format data (the
//! encoder frozen, its pooled features computed once; the list head trained with AdamW on
//! Circle loss), validated after every epoch with `eval`'s MAP and MRR@10, the best epoch's
//! checkpoint written in the original split layout.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use listconranker::config::BertConfig;
use listconranker::eval::{MetricsMean, RankingMetrics, Semantics, read_data_set};
use listconranker::train::{
    CircleLoss, EncoderWeights, HeadInit, HeadShape, HeadTrainer, LabelledQuery, LinearSchedule,
    PooledFeatures, StageOneSizes, TrainOptions, TrainingList, check_checkpoint_output,
    epoch_lists, fresh_head, has_merged_weights, named_parameters, stage_fresh_head,
    write_split_checkpoint,
};
use listconranker::weights::find_encoder_files;
use listconranker::weights::staging::StagingDir;
use listconranker::{Backend, Error, Precision};

use crate::ModelArgs;

#[derive(Args)]
pub struct TrainArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Training data, one query per row {query, positive: [...], negative: [...]}: JSON Lines
    /// or Parquet (the format `eval` reads). Rows without a positive or a negative are skipped
    /// and counted.
    #[arg(long, value_name = "FILE")]
    data: PathBuf,
    /// Validation data in the same format: MAP and MRR@10 after every epoch choose the
    /// checkpoint kept.
    #[arg(long, value_name = "FILE")]
    valid: PathBuf,
    /// 1: the encoder frozen, the list head trained (the only stage built so far).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=2))]
    stage: u8,
    /// Passes over the training data. 0 validates the starting head and writes it (with
    /// --init-head: the fresh head as drawn).
    #[arg(long, default_value_t = 4)]
    epochs: usize,
    /// Lists per optimizer step (the card: 1024 in stage one).
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..))]
    batch_size: u64,
    /// Lists per forward and backward pass within a step; the gradients of a step's passes add
    /// up (accumulation), so the batch size does not bound memory.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..))]
    micro_batch: u64,
    /// Peak learning rate (AdamW), reached after the warm-up and decayed linearly to 0.
    #[arg(long, default_value_t = 1e-4)]
    lr: f64,
    /// Share of the optimizer steps spent warming up.
    #[arg(long, default_value_t = 0.1)]
    warmup: f64,
    #[arg(long, default_value_t = 0.01)]
    weight_decay: f32,
    /// Largest global L2 norm of the gradient (0: no clipping).
    #[arg(long, default_value_t = 1.0)]
    max_grad_norm: f32,
    /// Passages per training list: the query's positives (at most all but one) and sampled
    /// negatives, drawn again every epoch.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(2..=1000))]
    passages_per_query: u64,
    /// Circle loss margin m.
    #[arg(long, default_value_t = CircleLoss::default().margin)]
    margin: f32,
    /// Circle loss scale gamma.
    #[arg(long, default_value_t = CircleLoss::default().gamma)]
    gamma: f32,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output directory: the checkpoint of the epoch with the best validation MAP, rewritten
    /// whenever an epoch beats the earlier ones (an earlier checkpoint there is replaced; any
    /// other non-empty directory is refused).
    #[arg(long)]
    out: PathBuf,
    /// Start from a plain BERT checkpoint (config, weights and tokenizer, no list head) under a
    /// fresh list head instead of the model's own.
    #[arg(long)]
    init_head: bool,
    /// How the fresh head starts: `similarity` ranks as the encoder's normalised embeddings do
    /// (their L1 distance) before any training; `random` is PyTorch's default initialisation.
    #[arg(long, value_enum, default_value_t = InitKind::Similarity, requires = "init_head")]
    head_init: InitKind,
    /// The fresh head's width D (default: twice the encoder's hidden size for `similarity`,
    /// which it needs; 1.75 times it for `random`, the release's proportion).
    #[arg(long, requires = "init_head", value_parser = clap::value_parser!(u64).range(1..=65536))]
    head_dim: Option<u64>,
    /// The fresh head's feed-forward width F (default: twice the encoder's hidden size).
    #[arg(long, requires = "init_head", value_parser = clap::value_parser!(u64).range(1..=262144))]
    head_ffn: Option<u64>,
    /// The fresh head's list layers.
    #[arg(long, requires = "init_head", value_parser = clap::value_parser!(u64).range(1..=64))]
    head_layers: Option<u64>,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum InitKind {
    Similarity,
    Random,
}

impl From<InitKind> for HeadInit {
    fn from(kind: InitKind) -> Self {
        match kind {
            InitKind::Similarity => HeadInit::Similarity,
            InitKind::Random => HeadInit::Random,
        }
    }
}

pub fn run(args: &TrainArgs) -> Result<(), Error> {
    check(args)?;
    check_checkpoint_output(&args.out)?;
    check_source(args)?;
    let train = read_queries(&args.data)?;
    let valid = read_queries(&args.valid)?;
    let memory = |head: HeadShape, encoder_bytes: u64| StageOneSizes {
        head,
        texts: train
            .iter()
            .chain(&valid)
            .map(|q| 1 + q.positive.len() + q.negative.len())
            .sum(),
        list_len: train
            .iter()
            .map(|q| {
                1 + (q.positive.len() + q.negative.len()).min(args.passages_per_query as usize)
            })
            .max()
            .unwrap_or(1),
        micro_batch: args.micro_batch.min(args.batch_size) as usize,
        valid_list_len: valid
            .iter()
            .map(|q| 1 + q.positive.len() + q.negative.len())
            .max()
            .unwrap_or(1),
        valid_batch: VALIDATION_BATCH,
        encoder_bytes,
    };
    // A fresh head is staged as a checkpoint beside the output, loaded like any other and
    // removed at the end.
    let fresh = args
        .init_head
        .then(|| stage_head(args, &memory))
        .transpose()?;
    let ranker = match &fresh {
        Some(staged) => ModelArgs {
            model: staged.path().to_path_buf(),
            ..args.model.clone()
        }
        .load()?,
        None => args.model.load()?,
    };
    let batch_tokens = ranker.options().effective_batch_tokens();
    let parts = ranker.into_training_parts();
    // Loaded: nothing reads the staged head again (and an interrupted run leaves less behind).
    drop(fresh);
    if !args.init_head {
        // The encoder is in memory already, so the system's figure counts it.
        memory(HeadShape::from(&parts.config), 0).check()?;
    }
    let valid_lists: Vec<TrainingList> = valid.iter().map(LabelledQuery::full_list).collect();
    let every_text: Vec<TrainingList> = train
        .iter()
        .map(LabelledQuery::full_list)
        .chain(valid_lists.iter().cloned())
        .collect();
    let started = Instant::now();
    let features = PooledFeatures::compute(
        &parts.encoder,
        &parts.tokenizer,
        &every_text,
        batch_tokens,
        parts.placement.device(),
    )?;
    eprintln!(
        "pooled features of {} texts in {:.1} s",
        features.len(),
        started.elapsed().as_secs_f64()
    );
    // Stage one leaves the encoder as it was: its file is taken over as it is, except from a
    // merged-layout checkpoint, whose one file holds the old head too.
    let merged_encoder = has_merged_weights(&args.model.model)
        .then(|| named_parameters(&parts.encoder, &parts.names));
    let encoder = match &merged_encoder {
        Some(tensors) => EncoderWeights::Tensors(tensors),
        None => EncoderWeights::FromSource,
    };
    drop(parts.encoder);
    let options = TrainOptions {
        loss: CircleLoss {
            margin: args.margin,
            gamma: args.gamma,
        },
        lr: args.lr,
        weight_decay: args.weight_decay,
        max_grad_norm: (args.max_grad_norm > 0.0).then_some(args.max_grad_norm),
        ..TrainOptions::default()
    };
    let mut trainer = HeadTrainer::new(parts.head, parts.names, options);
    let batch = usize::try_from(args.batch_size).unwrap_or(usize::MAX);
    let micro = usize::try_from(args.micro_batch).unwrap_or(usize::MAX);
    let lists_per_epoch = train.iter().filter(|q| q.is_trainable()).count();
    let steps_per_epoch = lists_per_epoch.div_ceil(batch);
    let schedule = LinearSchedule {
        peak: args.lr,
        warmup_steps: (args.warmup * (steps_per_epoch * args.epochs) as f64).round() as usize,
        total_steps: steps_per_epoch * args.epochs,
    };
    let untrained = validate(&trainer, &features, &valid_lists)?;
    let starting_head = trainer.parameters();
    eprintln!(
        "epoch 0 (untrained head): validation MAP {:.2}, MRR@10 {:.2}",
        untrained.ap * 100.0,
        untrained.mrr_10 * 100.0
    );
    // The starting head is the one to beat: an epoch is written only when it does better on
    // validation, so an interrupted run never leaves a checkpoint worse than its start.
    let mut best = untrained.ap;
    let mut written = false;
    let mut step = 0;
    for epoch in 1..=args.epochs {
        let lists = epoch_lists(
            &train,
            args.passages_per_query as usize,
            args.seed,
            epoch as u64,
        );
        let bar = progress_bar(steps_per_epoch, epoch, args.epochs);
        let epoch_started = Instant::now();
        let mut loss_sum = 0.0;
        for chunk in lists.chunks(batch) {
            let loss = trainer
                .step_batch(&features, chunk, micro, schedule.at(step))
                .map_err(|e| {
                    let reason = reason(e);
                    Error::input(format!(
                        "training stopped at epoch {epoch}, step {}: {reason} (the last \
                         checkpoint written is kept)",
                        step + 1
                    ))
                })?;
            step += 1;
            loss_sum += f64::from(loss) * chunk.len() as f64;
            bar.set_message(format!("loss {loss:.4}"));
            bar.inc(1);
        }
        bar.finish_and_clear();
        let seconds = epoch_started.elapsed().as_secs_f64();
        let metrics = validate(&trainer, &features, &valid_lists).map_err(|e| {
            let reason = reason(e);
            Error::input(format!(
                "after epoch {epoch}: {reason}; training diverged (try a lower --lr); the last \
                 checkpoint written is kept"
            ))
        })?;
        let improved = metrics.ap > best;
        eprintln!(
            "epoch {epoch}: mean loss {:.4}, {:.1} lists/s; validation MAP {:.2}, MRR@10 {:.2}{}",
            loss_sum / lists.len().max(1) as f64,
            lists.len() as f64 / seconds.max(1e-9),
            metrics.ap * 100.0,
            metrics.mrr_10 * 100.0,
            if improved {
                " (best so far: written)"
            } else {
                ""
            }
        );
        if improved {
            best = metrics.ap;
            written = true;
            write_split_checkpoint(&args.model.model, &args.out, encoder, &trainer.parameters())?;
        }
    }
    if !written {
        if args.epochs > 0 {
            eprintln!(
                "warning: no epoch beat the starting head on validation (MAP {:.2}); the \
                 starting head was written",
                untrained.ap * 100.0
            );
        }
        write_split_checkpoint(&args.model.model, &args.out, encoder, &starting_head)?;
    }
    println!("{}", args.out.display());
    Ok(())
}

/// What went wrong, without the "invalid input" prefix, to go inside a message that says where.
fn reason(e: Error) -> String {
    match e {
        Error::InvalidInput(reason) => reason,
        other => other.to_string(),
    }
}

/// A fresh head of the requested shape on the encoder at `--model`, staged for loading.
/// Refused before anything is allocated when `memory` of its shape exceeds what is available.
fn stage_head(
    args: &TrainArgs,
    memory: &impl Fn(HeadShape, u64) -> StageOneSizes,
) -> Result<StagingDir, Error> {
    let config = BertConfig::from_file(&args.model.model.join("config.json"))?;
    let init = HeadInit::from(args.head_init);
    let mut shape = HeadShape::for_encoder(config.hidden_size, config.num_attention_heads, init);
    let size = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
    shape.dim = args.head_dim.map_or(shape.dim, size);
    shape.ffn = args.head_ffn.map_or(shape.ffn, size);
    shape.layers = args.head_layers.map_or(shape.layers, size);
    shape.check(init)?;
    // Not loaded yet: its weights file counts (as stored; f32 in memory at most twice an f16
    // file's size, which the estimate's margins cover for the small encoders this serves).
    let encoder_bytes = find_encoder_files(&args.model.model)
        .ok()
        .and_then(|files| std::fs::metadata(files.weights).ok())
        .map_or(0, |meta| meta.len());
    memory(shape, encoder_bytes).check()?;
    let head = fresh_head(shape, init, args.seed)?;
    eprintln!(
        "fresh list head ({} start): D {}, F {}, {} layers, {} heads",
        match init {
            HeadInit::Similarity => "similarity",
            HeadInit::Random => "random",
        },
        shape.dim,
        shape.ffn,
        shape.layers,
        shape.heads
    );
    stage_fresh_head(&args.model.model, &args.out, &head)
}

/// A source that cannot be trained from, or that the output would replace, refused before
/// anything is read.
fn check_source(args: &TrainArgs) -> Result<(), Error> {
    let model = &args.model.model;
    if model.join("manifest.json").is_file() {
        return Err(Error::input(format!(
            "{} is a web bundle; train from the checkpoint directory it was converted from",
            model.display()
        )));
    }
    let same = |a: &std::path::Path, b: &std::path::Path| matches!((a.canonicalize(), b.canonicalize()), (Ok(a), Ok(b)) if a == b);
    if same(model, &args.out) {
        return Err(Error::input(format!(
            "--out {} is the model being trained; write to another directory",
            args.out.display()
        )));
    }
    find_encoder_files(model)?;
    Ok(())
}

/// Options that cannot work, refused before anything is read.
fn check(args: &TrainArgs) -> Result<(), Error> {
    if args.stage != 1 {
        return Err(Error::input(
            "--stage 2 (training the encoder too) is not built yet; stage 1 trains the list head",
        ));
    }
    if args.model.device != Backend::Cpu || args.model.dtype != Precision::F32 {
        return Err(Error::input(
            "training runs on the CPU in f32 (--device cpu --dtype f32)",
        ));
    }
    let finite_positive = |v: f64| v.is_finite() && v > 0.0;
    if !finite_positive(args.lr) || !finite_positive(f64::from(args.gamma)) {
        return Err(Error::input("--lr and --gamma must be positive numbers"));
    }
    if !(0.0..1.0).contains(&args.warmup)
        || !(args.margin.is_finite() && (0.0..1.0).contains(&args.margin))
        || !(args.weight_decay.is_finite() && args.weight_decay >= 0.0)
        || !(args.max_grad_norm.is_finite() && args.max_grad_norm >= 0.0)
    {
        return Err(Error::input(
            "--warmup and --margin must lie in [0, 1), --weight-decay and --max-grad-norm must \
             be non-negative",
        ));
    }
    Ok(())
}

fn read_queries(path: &std::path::Path) -> Result<Vec<LabelledQuery>, Error> {
    let set = read_data_set(path, None)?;
    eprintln!(
        "{}: {} queries ({} skipped for lacking a positive or a negative)",
        path.display(),
        set.samples.len(),
        set.skipped
    );
    Ok(set
        .samples
        .into_iter()
        .map(|s| LabelledQuery {
            query: s.query,
            positive: s.positive,
            negative: s.negative,
        })
        .collect())
}

/// Validation lists scored per pass (no gradients kept).
const VALIDATION_BATCH: usize = 64;

/// Mean MAP and MRR over the validation queries, each ranking all its passages (MTEB 1.x
/// semantics, as `eval` reports by default).
fn validate(
    trainer: &HeadTrainer,
    features: &PooledFeatures,
    lists: &[TrainingList],
) -> Result<RankingMetrics, Error> {
    let mut mean = MetricsMean::default();
    for chunk in lists.chunks(VALIDATION_BATCH) {
        for (list, scores) in chunk.iter().zip(trainer.scores(features, chunk)?) {
            if scores.iter().any(|s| !s.is_finite()) {
                return Err(Error::input(format!(
                    "the validation scores of the query {:?} are not finite",
                    list.texts[0].chars().take(60).collect::<String>()
                )));
            }
            let scores: Vec<f64> = scores.into_iter().map(f64::from).collect();
            mean.add(RankingMetrics::of_query(
                &list.positive,
                &scores,
                Semantics::Mteb1,
            )?);
        }
    }
    Ok(mean.mean())
}

fn progress_bar(steps: usize, epoch: usize, epochs: usize) -> ProgressBar {
    let bar = ProgressBar::new(steps as u64);
    let style = ProgressStyle::with_template(
        "{prefix} {wide_bar} {pos}/{len} steps {msg} [{elapsed_precise}, {per_sec}, ETA {eta}]",
    )
    .expect("a valid progress template");
    bar.set_style(style);
    bar.set_prefix(format!("epoch {epoch}/{epochs}"));
    bar.enable_steady_tick(Duration::from_millis(500));
    bar
}
