# bash completion for dnic: its options (keep in step with cli/options.c; tests/e2e/install.sh
# checks it against `dnic --help`), the values of --schedule, and after --set the keys data.,
# train., loss., layer.NAME. and sg.NAME., with NAME read from the model file on the line.
# Needs nothing but bash (not the bash-completion package).

_dnic_options='--check --run -c --eval --predict --dump-ast --dump-ir --emit-dot --emit-llvm -S -o --header --prefix
--cpu --target --set --save-weights --save-best --load-weights --save-init --export-data --log
--save-predictions --plot --plot-x --checkpoint --checkpoint-every --resume --vary --schedule --threads
--placement --replicas --no-cache --probe --progress --no-progress --help -h --version'

# The settings each block accepts (docs/language.md).
_dnic_keys_data='train_images train_labels test_images test_labels train test label scale one_hot
inputs labels limit test_limit validation classes bits examples seed length repeats test_examples
curriculum max_length'
_dnic_keys_train='mode batch lr epochs steps report_every seed dtype optimizer backward_message
report_sg lag momentum beta1 beta2 eps shuffle patience keep_best grad unroll update_prob warmup'
_dnic_keys_loss='report report_per'
_dnic_keys_layer='activation bias init bias_init norm norm_momentum norm_eps repeat trainable lr steps input
recurrent_init unroll'
_dnic_keys_sg='input form hidden activation init bias_init lr target hidden_init bias lambda scale clip head'

# _dnic_model_file: the first word ending in .dni on the line.
_dnic_model_file() {
    local w
    for w in "${COMP_WORDS[@]:1}"; do
        case $w in *.dni) printf '%s\n' "$w"; return ;; esac
    done
}

# _dnic_names KIND FILE: the names of the layers (KIND layer) or SG modules (KIND sg) in FILE.
_dnic_names() {
    [ -r "$2" ] || return
    sed -n "s/^[[:space:]]*$1[[:space:]]\{1,\}\([A-Za-z_][A-Za-z0-9_]*\).*/\1/p" "$2" 2>/dev/null
}

# _dnic_set_keys CUR: the --set keys that complete CUR.
_dnic_set_keys() {
    local cur=$1 file k n words=() IFS=$' \t\n'
    file=$(_dnic_model_file)
    case $cur in
    data.*) for k in $_dnic_keys_data; do words+=("data.$k="); done ;;
    train.*) for k in $_dnic_keys_train; do words+=("train.$k="); done ;;
    loss.*) for k in $_dnic_keys_loss; do words+=("loss.$k="); done ;;
    layer.*.* | sg.*.*)
        local kind=${cur%%.*} rest=${cur#*.}
        local keys=$_dnic_keys_layer
        [ "$kind" = sg ] && keys=$_dnic_keys_sg
        for k in $keys; do words+=("$kind.${rest%%.*}.$k="); done ;;
    layer.* | sg.*)
        local kind=${cur%%.*}
        for n in $(_dnic_names "$kind" "$file"); do words+=("$kind.$n."); done ;;
    *) words=(data. train. loss. layer. sg.) ;;
    esac
    compgen -W "${words[*]}" -- "$cur"
}

_dnic() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=
    [ "$COMP_CWORD" -gt 0 ] && prev=${COMP_WORDS[COMP_CWORD - 1]}
    COMPREPLY=()
    case $prev in
    --set)
        local IFS=$'\n'
        COMPREPLY=($(_dnic_set_keys "$cur"))
        # a key ending in '.' or '=' goes on without a space
        compopt -o nospace 2>/dev/null
        return ;;
    --schedule)
        COMPREPLY=($(compgen -W 'auto sequential pipeline mpi' -- "$cur"))
        return ;;
    --plot-x | --x)
        COMPREPLY=($(compgen -W 'step time' -- "$cur"))
        return ;;
    --threads | --checkpoint-every | --prefix | --cpu | --target | --vary | --placement | --replicas)
        return ;;
    -o | --header | --emit-llvm | -S | --save-weights | --save-best | --load-weights | --save-init | --export-data | \
        --log | --save-predictions | --plot | --checkpoint | --resume | --predict)
        COMPREPLY=($(compgen -f -- "$cur"))
        return ;;
    esac
    case $cur in
    -*) COMPREPLY=($(compgen -W "$_dnic_options" -- "$cur")) ;;
    *)
        if [ "$COMP_CWORD" -eq 1 ]; then
            COMPREPLY=($(compgen -W plot -- "$cur") $(compgen -f -X '!*.dni' -- "$cur") $(compgen -d -- "$cur"))
        else
            COMPREPLY=($(compgen -f -- "$cur"))
        fi ;;
    esac
}
complete -F _dnic dnic
