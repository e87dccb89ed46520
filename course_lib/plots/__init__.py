"""Pure figure builders: data in, a plotly Figure out. Nothing here trains, shows or reads files.

One module per notebook idea (sizing, moe, attention, distill, grpo, look_inside).
"""
