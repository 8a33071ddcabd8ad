"""The paper's baselines (direct, naive, soft prompt, fine-tuned), their training, and the one `Approach`
interface and registry through which evaluation and the app run them beside TALL."""
