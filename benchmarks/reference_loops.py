"""Per-task reference loops, organised the way the authors' release runs (official-mebqat.md §4, §8 item 18):
for every bitwidth task (in MAML: every episode; at meta-test: every episode and bitwidth) a fresh network
object is built, the base network's state dict is copied into it, one task runs on it, and its gradients
are gathered into running sums by parameter name. Written for this benchmark from that description; they
time the organisation of the work, and their arithmetic is the specification's (same losses, same
aggregation), so our engines can be compared with them step for step.

Left out, so the comparison is conservative (each would only slow the reference down): anomaly detection
(on in every official script), the range asserts that force a device synchronisation in the SAT and DoReFa
autograd functions, and the per-task teacher's unused graph is built here too but freed at once.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

from mebqat.core.tasks import BitwidthTask
from mebqat.data.episode import Episode
from mebqat.kernels.protonet import prototypical_loss

FP = BitwidthTask(None, None)
Builder = Callable[[], nn.Module]


def fresh_copy(build: Builder, base: nn.Module, device: torch.device) -> nn.Module:
    """A new network object with the base's state: what the release does for every task."""
    net = build().to(device)
    net.load_state_dict(base.state_dict())
    return net.train()


def _accumulate(net: nn.Module, loss: torch.Tensor, sums: dict[str, torch.Tensor], counts: dict[str, int]) -> None:
    names, params = zip(*net.named_parameters(), strict=True)
    for name, grad in zip(names, torch.autograd.grad(loss, params, allow_unused=True), strict=True):
        if grad is not None:
            sums[name] = sums[name] + grad if name in sums else grad
            counts[name] = counts.get(name, 0) + 1


def _write_gradients(
    base: nn.Module, sums: dict[str, torch.Tensor], divisor: Callable[[str], int], clamp: float = 10.0
) -> None:
    for name, param in base.named_parameters():
        param.grad = (sums[name] / divisor(name)).clamp(-clamp, clamp) if name in sums else None


def mebqat_step(
    build: Builder, base: nn.Module, x: torch.Tensor, y: torch.Tensor, tasks: list[BitwidthTask], kd: bool = True
) -> None:
    """Table 2 MEBQAT (§4.1): per task a fresh copy; a quantized task also builds an FP teacher copy and
    runs it in train mode; CE (+ soft CE against the teacher); gradients averaged over the tasks that use
    each parameter, clamped to ±10."""
    sums: dict[str, torch.Tensor] = {}
    counts: dict[str, int] = {}
    for task in tasks:
        net = fresh_copy(build, base, x.device)
        logits = net(x, task)
        loss = F.cross_entropy(logits, y)
        if kd and not task.is_full_precision:
            teacher = fresh_copy(build, base, x.device)(x, FP).detach()
            loss = loss - (F.softmax(teacher, -1) * F.log_softmax(logits, -1)).sum(-1).mean()
        _accumulate(net, loss, sums, counts)
    _write_gradients(base, sums, lambda name: counts[name])


def dedicated_step(build: Builder, base: nn.Module, x: torch.Tensor, y: torch.Tensor, task: BitwidthTask) -> None:
    """Dedicated QAT (§4.2): a fresh copy at the fixed task, one CE step, running statistics copied back."""
    net = fresh_copy(build, base, x.device)
    loss = F.cross_entropy(net(x, task), y)
    sums: dict[str, torch.Tensor] = {}
    _accumulate(net, loss, sums, {})
    _write_gradients(base, sums, lambda name: 1)
    with torch.no_grad():
        for (_, mine), (_, theirs) in zip(base.named_buffers(), net.named_buffers(), strict=True):
            mine.copy_(theirs)


def _episode(episodes: Episode, i: int) -> Episode:
    return Episode(*(field[i] for field in episodes))


def _fine_tune(net: nn.Module, adapt: set[str], episode: Episode, task: BitwidthTask, lr: float, steps: int) -> None:
    optimizer = torch.optim.SGD([p for name, p in net.named_parameters() if name in adapt], lr=lr)
    for _ in range(steps):
        optimizer.zero_grad()
        F.cross_entropy(net(episode.support_x, task), episode.support_y).backward()
        optimizer.step()


def maml_update(
    build: Builder,
    base: nn.Module,
    episodes: Episode,
    tasks: list[BitwidthTask],
    adapt: set[str],
    inner_lr: float,
    inner_steps: int,
) -> None:
    """MEBQAT-MAML / FOMAML (§4.3–4.4): per episode a fresh copy, ``inner_steps`` SGD steps on the support
    set, the release's no-grad support forward, the query gradient at the adapted point; ÷ B, ±10."""
    sums: dict[str, torch.Tensor] = {}
    for i, task in enumerate(tasks):
        episode = _episode(episodes, i)
        net = fresh_copy(build, base, episode.support_x.device)
        _fine_tune(net, adapt, episode, task, inner_lr, inner_steps)
        with torch.no_grad():
            net(episode.support_x, task)
        _accumulate(net, F.cross_entropy(net(episode.query_x, task), episode.query_y), sums, {})
    _write_gradients(base, sums, lambda name: len(tasks))


def pn_update(build: Builder, base: nn.Module, episode: Episode, tasks: list[BitwidthTask], ways: int) -> None:
    """MEBQAT-PN / PN (§4.5–4.6): per task a fresh copy, one forward on support + query, the prototypical
    loss; gradients ÷ the number of tasks, ±10."""
    sums: dict[str, torch.Tensor] = {}
    shots = episode.support_x.shape[0]
    for task in tasks:
        net = fresh_copy(build, base, episode.support_x.device)
        z = net(torch.cat([episode.support_x, episode.query_x]), task)
        loss, _ = prototypical_loss(z[:shots], episode.support_y, z[shots:], episode.query_y, ways)
        _accumulate(net, loss, sums, {})
    _write_gradients(base, sums, lambda name: len(tasks))


def maml_metatest(
    build: Builder,
    base: nn.Module,
    episodes: Episode,
    tasks: list[BitwidthTask],
    adapt: set[str],
    lr: float,
    steps: int,
) -> torch.Tensor:
    """[tasks, episodes] query accuracy: per (episode, bitwidth) a fresh copy fine-tuned on the support set."""
    rows = []
    for task in tasks:
        row = []
        for i in range(episodes.support_x.shape[0]):
            episode = _episode(episodes, i)
            net = fresh_copy(build, base, episode.support_x.device)
            _fine_tune(net, adapt, episode, task, lr, steps)
            with torch.no_grad():
                row.append((net(episode.query_x, task).argmax(-1) == episode.query_y).float().mean())
        rows.append(torch.stack(row))
    return torch.stack(rows)


def pn_metatest(
    build: Builder, base: nn.Module, episodes: Episode, tasks: list[BitwidthTask], ways: int
) -> torch.Tensor:
    """[tasks, episodes] query accuracy: per (episode, bitwidth) a fresh copy, one forward, prototypes."""
    rows = []
    for task in tasks:
        row = []
        for i in range(episodes.support_x.shape[0]):
            episode = _episode(episodes, i)
            net = fresh_copy(build, base, episode.support_x.device).eval()
            shots = episode.support_x.shape[0]
            with torch.no_grad():
                z = net(torch.cat([episode.support_x, episode.query_x]), task)
                _, accuracy = prototypical_loss(z[:shots], episode.support_y, z[shots:], episode.query_y, ways)
            row.append(accuracy)
        rows.append(torch.stack(row))
    return torch.stack(rows)
