"""Teaching tools: explain one output, learn a kernel back, layer stacks and receptive fields, figures."""
