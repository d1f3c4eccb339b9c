"""Ember's TVM lowerings, one module per operator family, as the ONNX spec groups its ops.

Each module registers its ops' lowerings with ``codegen.tvm.registry.lowering`` (which adds them to
the op registry, ``compiler.ops``); ``codegen.tvm.lowering`` imports them all.

    elementwise        math, activations, comparisons, logic, bitwise ops, Cast
    reduction          ReduceX, ArgMax/ArgMin, CumSum/CumProd
    linalg             MatMul, Gemm, Einsum, Det
    recurrent          RNN, GRU, LSTM: one kernel over the whole sequence
    nn/                conv, deform_conv, col2im, conv_transpose, pool, normalization (and Softmax)
    tensor/            views, movement, indexing, creation, sorting (TopK), data_dependent (NonZero ...)
    quantization       QuantizeLinear/DequantizeLinear, integer and QLinear matmuls and convolutions
    image/             Resize (and its antialias filter), GridSample, AffineGrid
    object_detection   NonMaxSuppression, RoiAlign
    signal/            DFT, STFT, window functions, MelWeightMatrix
    ml                 traditional ML (ai.onnx.ml): tree ensembles, ArrayFeatureExtractor, Binarizer
    text               n-gram counting (TfIdfVectorizer)
    training           ai.onnx.preview.training optimiser steps
"""
