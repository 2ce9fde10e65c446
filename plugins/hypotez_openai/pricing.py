"""What an OpenAI fine-tuning job will cost: its default-epochs rule, context limits and prices.

These are OpenAI's numbers, so they live in the OpenAI plugin: core's validation asks the
trainer (:meth:`hypotez_openai.training.OpenAITrainer.limits` and ``estimate_cost``).

The epochs rule is the one in OpenAI's cookbook notebook "Data preparation and analysis for
chat model fine-tuning": aim for 3 epochs, but at least 100 example passes (up to 25 epochs)
and at most 25,000 (down to 1 epoch). Examples are billed up to the per-example token limit.

Prices are USD per 1M *training* tokens from OpenAI's pricing page (checked 2025); they change,
so pass your own (``price_per_million`` / ``--price``) when it matters. A model with no known
price gets no cost figure rather than a wrong one.
"""

from __future__ import annotations

from typing import Any

from hypotez import CostEstimate
from hypotez_openai.tokens import base_model

TARGET_EPOCHS = 3
MIN_TARGET_EXAMPLES = 100
MAX_TARGET_EXAMPLES = 25_000
MIN_DEFAULT_EPOCHS = 1
MAX_DEFAULT_EPOCHS = 25

#: Longest model-name prefix wins. USD per 1M training tokens.
TRAINING_PRICES: dict[str, float] = {
    "gpt-4.1-nano": 1.50,
    "gpt-4.1-mini": 5.00,
    "gpt-4.1": 25.00,
    "gpt-4o-mini": 3.00,
    "gpt-4o": 25.00,
    "gpt-3.5-turbo": 8.00,
    "davinci-002": 6.00,
    "babbage-002": 0.40,
}

#: Longest model-name prefix wins. Tokens per training example (OpenAI's fine-tuning guide).
CONTEXT_LIMITS: dict[str, int] = {
    "gpt-4.1": 65_536,
    "gpt-4o-mini": 65_536,
    "gpt-4o": 65_536,
    "gpt-3.5-turbo-0613": 4_096,
    "gpt-3.5-turbo": 16_385,
}
#: For models not in the table: the limit the cookbook uses.
DEFAULT_CONTEXT_LIMIT = 16_385


def _lookup(table: dict[str, Any], model: str) -> Any:
    name = base_model(model)
    matches = [prefix for prefix in table if name.startswith(prefix)]
    return table[max(matches, key=len)] if matches else None


def price_per_million(model: str) -> float | None:
    price: float | None = _lookup(TRAINING_PRICES, model)
    return price


def context_limit(model: str) -> int:
    limit: int | None = _lookup(CONTEXT_LIMITS, model)
    return limit if limit is not None else DEFAULT_CONTEXT_LIMIT


def default_epochs(n_examples: int) -> int:
    """How many epochs OpenAI trains for by default (``n_epochs="auto"``)."""
    if n_examples <= 0:
        return 0
    if n_examples * TARGET_EPOCHS < MIN_TARGET_EXAMPLES:
        return min(MAX_DEFAULT_EPOCHS, MIN_TARGET_EXAMPLES // n_examples)
    if n_examples * TARGET_EPOCHS > MAX_TARGET_EXAMPLES:
        return max(MIN_DEFAULT_EPOCHS, MAX_TARGET_EXAMPLES // n_examples)
    return TARGET_EPOCHS


def estimate_cost(
    model: str,
    token_counts: list[int],
    *,
    limit: int,
    epochs: int | None = None,
    price: float | None = None,
) -> CostEstimate:
    """The cost of training ``model`` on examples of ``token_counts`` tokens each."""
    return CostEstimate(
        model=model,
        epochs=epochs if epochs is not None else default_epochs(len(token_counts)),
        epochs_auto=epochs is None,
        billing_tokens_per_epoch=sum(min(limit, n) for n in token_counts),
        price_per_million=price if price is not None else price_per_million(model),
        epochs_rule="OpenAI's default rule",
    )
