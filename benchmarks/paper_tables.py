"""README tables from an evaluate.py run, next to the paper's Tables 3 and 4: flags only, the report
code is :mod:`linf_tf.evaluation.paper_tables`.

    python benchmarks/paper_tables.py out/eval_grid/results.json --networks=linf,mse,mse_gan,arcnn \
        --output=docs/results/paper_comparison.md
"""

from linf_tf.evaluation.paper_tables import main

if __name__ == "__main__":
    main()
