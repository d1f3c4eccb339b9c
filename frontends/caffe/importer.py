"""``import_model``: a Caffe net (prototxt + optional caffemodel) as an Ember Graph.

The walk:

1. read the prototxt and the caffemodel (``loader.py``); the caffemodel's
   blobs are matched to the prototxt's layers by layer name;
2. refuse the whole net at once when any layer type has no converter,
   listing every such layer by name;
3. make graph parameters from ``input``/``input_shape``/``input_dim`` and
   ``Input`` layers;
4. convert each layer in order.  Blob names are rebound as layers run, so an
   in-place layer (``top == bottom``) yields a fresh SSA value and later
   readers of the name see the newest one;
5. check every node a layer made against its op's shape contract (``OpDef.contract``); the
   import fails once the whole net is read, listing each layer that breaks one;
6. the graph outputs are the blobs that no later layer reads, as in Caffe.
"""

from __future__ import annotations

import os

import numpy as np

from compiler import Builder, DType, EmberError, Graph, IRError, TensorType, Value
from compiler.ops.inference import InferenceError, check_contract

from ..common import checked_numel
from ..common import max_tensor_bytes as tensor_byte_limit
from . import layers as _layers  # noqa: F401  (registers the converters)
from . import loader
from .context import CONVERTERS, LayerContext

INPUT_TYPES = ("Input",)


def import_model(
    prototxt_path,
    caffemodel_path=None,
    *,
    weights=None,
    input_shapes: dict[str, list[int]] | None = None,
    max_tensor_bytes: int | None = None,
) -> Graph:
    """Import a Caffe model as a Graph.

    ``weights`` is an alias of ``caffemodel_path`` (the CLI's ``--weights``);
    without either, layers that need trained blobs fail with a clear error.
    ``input_shapes`` replaces declared input shapes by input name (static
    ints only: every Caffe layer needs static shapes), e.g. another batch size.
    ``max_tensor_bytes`` caps any one tensor (default ``$EMBER_MAX_TENSOR_BYTES`` or 16 GiB).
    """
    limit = tensor_byte_limit(max_tensor_bytes)
    prototxt_path = os.fspath(prototxt_path)
    caffemodel_path = caffemodel_path if caffemodel_path is not None else weights
    net = loader.read_prototxt(prototxt_path)
    blobs = {}
    if caffemodel_path is not None:
        caffemodel_path = os.fspath(caffemodel_path)
        blobs = _blobs_by_layer(loader.read_caffemodel(caffemodel_path), caffemodel_path)
    return CaffeImporter(net, blobs, prototxt_path, input_shapes, limit).run()


def _blobs_by_layer(model, path: str) -> dict[str, list[np.ndarray]]:
    """Each layer's trained blobs by layer name (all phases: weights do not depend on the phase)."""
    found = {}
    try:
        layers = loader.layers_of(model, phase_filter=False)
    except ValueError as error:
        raise EmberError(str(error), file=path) from None
    for layer in layers:
        if not layer.blobs:
            continue
        try:
            found[layer.name] = [loader.blob_array(blob) for blob in layer.blobs]
        except ValueError as error:
            raise EmberError(f"layer '{layer.name}': {error}", file=path) from None
    return found


class CaffeImporter:
    """Converts one NetParameter; ``blobs`` maps layer names to trained weights."""

    def __init__(
        self,
        net,
        blobs: dict[str, list[np.ndarray]],
        file: str,
        input_shapes: dict[str, list[int]] | None = None,
        max_tensor_bytes: int | None = None,
    ):
        self.net = net
        self.limit = tensor_byte_limit(max_tensor_bytes)
        self.input_shapes = dict(input_shapes or {})
        self.blobs = blobs
        self.file = file
        self.graph = Graph(net.name or "caffe")
        self.builder = Builder(self.graph)
        self.values: dict[str, Value] = {}  # Caffe blob name -> its newest SSA value
        self.unread: dict[str, Value] = {}  # blobs produced and not yet read, in order
        self.versions: dict[str, int] = {}  # blob name -> how many earlier values were renamed
        self.broken: list[tuple[str, str, list[str]]] = []  # (layer name, layer type, contract problems)

    def run(self) -> Graph:
        """Convert the net; returns the Graph or raises an EmberError naming the culprit."""
        try:
            layers = loader.layers_of(self.net)
        except ValueError as error:
            raise EmberError(str(error), file=self.file) from None
        self._check_supported(layers)
        self._add_net_inputs()
        try:
            for layer in layers:
                if layer.type in INPUT_TYPES:
                    self._add_input_layer(layer)
                else:
                    self._convert(layer)
        except EmberError as error:
            if not self.broken:
                raise
            raise self._contract_error(later=error) from None
        if self.broken:
            raise self._contract_error()
        if not self.unread:
            raise EmberError("the net has no outputs (every blob is read by a later layer)", file=self.file)
        if self.input_shapes:
            raise EmberError(f"input_shapes names unknown inputs {sorted(self.input_shapes)}", file=self.file)
        self.graph.outputs = [self._named_output(name, value) for name, value in self.unread.items()]
        return self.graph

    def _named_output(self, name: str, value: Value) -> Value:
        """``value`` when it carries the blob's name, else an Identity that does (Dropout/Split outputs)."""
        if value.name == name:
            return value
        alias = self.builder.op("Identity", [value])
        alias.name = name
        return alias

    def _contract_error(self, later: EmberError | None = None) -> EmberError:
        """One EmberError for every layer whose nodes break their op's shape contract."""
        if len(self.broken) == 1 and later is None:
            name, kind, problems = self.broken[0]
            return EmberError(f"breaks a shape contract: {'; '.join(problems)}", file=self.file, node=name, op=kind)
        details = [f"layer '{name}' ({kind}): {'; '.join(problems)}" for name, kind, problems in self.broken]
        if later is not None:
            details.append(f"(then: {later})")
        return EmberError(f"{len(self.broken)} layer(s) break a shape contract", file=self.file, details=details)

    # steps ------------------------------------------------------------------
    def _check_supported(self, layers) -> None:
        """Refuse the net when any layer has no converter, listing all of them."""
        missing = [
            f"'{layer.name}' ({layer.type})"
            for layer in layers
            if layer.type not in CONVERTERS and layer.type not in INPUT_TYPES
        ]
        if missing:
            raise EmberError(f"{len(missing)} unsupported Caffe layer(s)", file=self.file, details=missing)

    def _add_param(self, name: str, shape) -> None:
        """A float32 graph parameter for input ``name`` (``input_shapes`` may replace its shape)."""
        shape = self.input_shapes.pop(name, shape)
        if not all(isinstance(d, (int, np.integer)) for d in shape):
            raise EmberError(f"input '{name}' needs a static shape, got {list(shape)}", file=self.file)
        shape = tuple(int(d) for d in shape)
        if not shape or any(d <= 0 for d in shape):
            raise EmberError(f"input '{name}' has an invalid shape {list(shape)}", file=self.file)
        checked_numel(shape, f"input '{name}'", self.file, DType.FLOAT32.itemsize, self.limit)
        self._define(name, self.builder.param(name, TensorType(DType.FLOAT32, shape)))

    def _add_net_inputs(self) -> None:
        """Parameters for ``input`` with ``input_shape`` or 4-value ``input_dim`` groups."""
        names = list(self.net.input)
        if self.net.input_shape:
            shapes = [list(s.dim) for s in self.net.input_shape]
        else:
            dims = list(self.net.input_dim)
            shapes = [dims[4 * i : 4 * i + 4] for i in range(len(dims) // 4)]
        if len(shapes) != len(names):
            raise EmberError(f"the net lists {len(names)} inputs but {len(shapes)} input shapes", file=self.file)
        for name, shape in zip(names, shapes):
            self._add_param(name, shape)

    def _add_input_layer(self, layer) -> None:
        """Parameters for an Input layer's tops (one shape each, or one for all)."""
        shapes = list(layer.input_param.shape)
        if len(shapes) not in (1, len(layer.top)):
            raise EmberError(
                f"has {len(layer.top)} tops but {len(shapes)} shapes", file=self.file, node=layer.name, op=layer.type
            )
        for i, top in enumerate(layer.top):
            self._add_param(top, shapes[min(i, len(shapes) - 1)].dim)

    def _convert(self, layer) -> None:
        """Run the layer's converter on the current values of its bottoms; bind its tops."""
        inputs = []
        for bottom in layer.bottom:
            if bottom not in self.values:
                raise EmberError(
                    f"reads blob '{bottom}', which no earlier layer produces",
                    file=self.file,
                    node=layer.name,
                    op=layer.type,
                )
            inputs.append(self.values[bottom])
            self.unread.pop(bottom, None)
        ctx = LayerContext(layer, inputs, self.blobs.get(layer.name, []), self.builder, self.file)
        last = self.graph.last
        try:
            outputs = list(CONVERTERS[layer.type](ctx))
        except EmberError:
            raise
        except (IRError, InferenceError, ValueError, IndexError) as error:  # e.g. shapes ONNX inference refuses
            raise ctx.error(f"cannot convert the layer: {error}") from None
        self._check_contracts(layer, self.graph.first if last is None else last.next)
        if len(outputs) != len(layer.top):
            raise ctx.error(f"makes {len(outputs)} outputs but lists {len(layer.top)} tops")
        for top, value in zip(layer.top, outputs):
            self._define(top, value)

    def _check_contracts(self, layer, node) -> None:
        """Record the shape-contract problems of the nodes from ``node`` on (those ``layer`` made)."""
        problems = []
        while node is not None:
            for i, value in enumerate(node.results):
                t = value.type
                if isinstance(t, TensorType) and t.is_static:
                    try:
                        checked_numel(t.shape, f"{node.op} result {i}", None, t.dtype.itemsize, self.limit)
                    except EmberError as error:
                        raise EmberError(error.message, file=self.file, node=layer.name, op=layer.type) from None
            problems += [
                f"{node.op}: {reason}"
                for reason in check_contract(node.op, node.operands, node.attrs, len(node.results), node)
            ]
            node = node.next
        if problems:
            self.broken.append((layer.name, layer.type, problems))

    def _define(self, name: str, value: Value) -> None:
        """Bind blob ``name`` to ``value``; an in-place layer's newest value takes the plain name.

        Earlier versions of the blob are renamed ``name.1``, ``name.2``... so the
        net's outputs print (and compile) under the Caffe blob names.
        """
        old = self.values.get(name)
        if value.producer is not None and not value.name:
            if old is not None and old is not value and old.producer is not None and old.name == name:
                self.versions[name] = self.versions.get(name, 0) + 1
                old.name = f"{name}.{self.versions[name]}"
            value.name = name
        self.values[name] = value
        self.unread.pop(name, None)
        self.unread[name] = value
