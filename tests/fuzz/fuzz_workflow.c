/*
 * fuzz_workflow.c - the workflow loader: YAML text to a validated model,
 * then its inputs bound from defaults; and one --input value converted
 * under a type taken from the first line.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "mapq_buf.h"
#include "mapq_type.h"
#include "mapq_workflow.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mapq_buf errors = MAPQ_BUF_INIT, out = MAPQ_BUF_INIT;
    struct mapq_workflow *wf;
    struct mapq_type *t = NULL;
    const char *text = (const char *)data;
    const char *nl = memchr(text, '\n', size);
    char err[MAPQ_ERR_LEN], tname[64];

    wf = mapq_workflow_parse(text, size, "fuzz.yaml", &errors);
    if (wf != NULL)
        mapq_workflow_bind_inputs(wf, NULL, 0, NULL, &out, &errors);
    mapq_workflow_free(wf);
    /* "TYPE\nVALUE": a --input value. */
    if (nl != NULL && (size_t)(nl - text) < sizeof(tname)) {
        memcpy(tname, text, (size_t)(nl - text));
        tname[nl - text] = '\0';
        t = mapq_type_parse(tname, err);
        mapq_buf_reset(&out);
        mapq_workflow_yaml_value(nl + 1, size - (size_t)(nl + 1 - text), t,
                                 "fuzz", &out, err);
        mapq_type_free(t);
    }
    mapq_buf_release(&out);
    mapq_buf_release(&errors);
    return 0;
}
