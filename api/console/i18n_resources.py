"""The labels of the resource register's pages 应急资源 (teams, equipment, depots and their stock alerts, experts,
shelters) and of an incident's disaster figures 灾情统计, Chinese first: added to i18n.STRINGS on import."""
from __future__ import annotations

from api.console.i18n import STRINGS

RESOURCE_STRINGS: dict[str, tuple[str, str]] = {
    # 灾情统计 on the incident page
    "fig_title": ("灾情统计", "Disaster figures"),
    "fig_intro": ("累计数(最近一次审核通过的报告);续报填写截至报送时的累计数。",
                  "Running totals (the last approved report); a follow-up gives the totals as of its time."),
    "fig_affected_population": ("受灾人口(人)", "Affected population"),
    "fig_relocated": ("紧急转移安置(人)", "Relocated"),
    "fig_houses_collapsed": ("倒塌房屋(间)", "Houses collapsed"),
    "fig_houses_damaged": ("损坏房屋(间)", "Houses damaged"),
    "fig_crop_area_ha": ("农作物受灾面积(公顷)", "Crops affected (ha)"),
    "fig_direct_loss_wan": ("直接经济损失(万元)", "Direct loss (10k yuan)"),
    "fig_correction": ("核减说明(累计数减少时填写)", "Correction (when a total goes down)"),
    "fig_none": ("尚无灾情统计数据", "No figures reported yet"),
    # the register's pages
    "resources": ("应急资源", "Resources"),
    "res_intro": ("救援队伍、装备、物资储备、专家和避难场所;可按乡镇(街道)和类别筛选。库存低于下限或过期的物资见“库存预警”。",
                  "Rescue teams, equipment, supply depots, experts and shelters; filter by town and kind. Stock below "
                  "its minimum or past expiry: stock alerts."),
    "res_teams": ("救援队伍", "Rescue teams"), "res_equipment": ("装备", "Equipment"),
    "res_depots": ("物资储备库", "Supply depots"), "res_experts": ("专家", "Experts"),
    "res_shelters": ("避难场所", "Shelters"), "res_alerts": ("库存预警", "Stock alerts"),
    "res_town": ("乡镇(街道)", "Town/street"), "res_kind": ("类别", "Kind"), "res_all": ("全部", "All"),
    "res_filter": ("筛选", "Filter"), "res_id": ("编号", "Id"), "res_name": ("名称", "Name"),
    "res_strength": ("人数", "Strength"), "res_base": ("驻地", "Base"), "res_duty_phone": ("值班电话", "Duty phone"),
    "res_leader": ("负责人", "Leader"), "res_readiness": ("战备状态", "Readiness"), "res_status": ("状态", "Status"),
    "res_quantity": ("数量", "Quantity"), "res_held_by": ("所属", "Held by"), "res_place": ("地址", "Place"),
    "res_keeper": ("保管人", "Keeper"), "res_stock": ("库存", "Stock"), "res_item": ("物资", "Item"),
    "res_minimum": ("储备下限", "Minimum"), "res_expiry": ("有效期至", "Expires"), "res_flags": ("预警", "Alert"),
    "res_field": ("专业领域", "Field"), "res_title": ("职称", "Title"), "res_employer": ("工作单位", "Employer"),
    "res_contact": ("联系电话", "Contact"), "res_capacity": ("容纳人数", "Capacity"),
    "res_none": ("没有符合条件的记录", "Nothing matches"), "res_no_alerts": ("目前没有库存预警", "No stock alerts"),
    "res_count": ("条", "records"), "res_busy_with": ("执行任务", "Dispatched to"),
    "res_ready": ("在岗待命", "ready"), "res_partial": ("部分到岗", "partly ready"), "res_unready": ("不能出动", "not ready"),
    "res_available": ("可调用", "available"), "res_busy": ("已出动", "dispatched"),
    "res_below_minimum": ("低于储备下限", "below minimum"), "res_expired": ("已过期", "expired"),
    "res_indoor": ("室内", "indoor"), "res_outdoor": ("室外", "outdoor"),
    # 待核实: records their owner has not confirmed in the yearly contact round
    "res_stale": ("待核实", "To confirm"), "res_section": ("类别", "Section"), "res_owner": ("负责人", "Owner"),
    "res_confirmed_at": ("最近核实", "Last confirmed"),
    "res_stale_intro": ("每年通讯录核实时,负责人确认联系方式即一并确认其负责的应急资源;超过一年未确认或无负责人的记录列于此。",
                        "The yearly contact round confirms the records a person answers for; records not confirmed "
                        "within a year, or with no owner, are listed here."),
    "res_stale_never": ("从未核实", "never confirmed"), "res_stale_stale": ("超过一年未核实", "not confirmed for a year"),
    "res_stale_no_owner": ("无负责人", "no owner"), "res_no_stale": ("所有记录均已按时核实", "Every record is confirmed"),
    # 每月调度: the monthly readiness check (workflows/readiness.py)
    "rdy_tab": ("每月调度", "Readiness checks"),
    "rdy_intro": ("每月语音呼叫各救援队伍的24小时值班电话:按1为在岗值守、人员满员,按2为不能满员在岗;无人接听的升级至队长,"
                  "再告知值班长。按2或无人应答的队伍在应急资源库中标为“不能出动”。",
                  "Every month each rescue team's 24-hour duty phone is called: 1 on duty at full strength, 2 not; no "
                  "answer: its leader, then the duty chief. Teams answering 2 or not at all are marked not ready."),
    "rdy_runs": ("调度记录", "Checks"), "rdy_started": ("开始时间", "Started"), "rdy_closed": ("结束时间", "Ended"),
    "rdy_by": ("发起", "Started by"), "rdy_by_schedule": ("定时任务", "schedule"), "rdy_total": ("队伍数", "Teams"),
    "rdy_ready": ("在岗满员", "Ready"), "rdy_not_ready": ("不能满员在岗", "Not ready"),
    "rdy_no_answer": ("无人应答", "No answer"), "rdy_state": ("结果", "Result"), "rdy_status": ("状态", "Status"),
    "rdy_answered_by": ("应答人", "Answered by"), "rdy_answered_at": ("应答时间", "Answered at"),
    "rdy_escalated": ("已升级至队长", "escalated to the leader"), "rdy_none": ("尚无每月调度记录", "No checks yet"),
    "rdy_teams": ("各队伍应答情况", "Each team's answer"), "rdy_running": ("进行中", "running"),
    "rdy_done": ("已结束", "ended"), "rdy_pending": ("待呼叫", "to call"), "rdy_called": ("呼叫中", "called"),
    "rdy_duty_phone": ("值班电话", "duty phone"), "rdy_leader": ("队长", "leader"),
    # 会商研判 on the activation page
    "mtg_title": ("会商研判", "Expert consultations"), "mtg_fields": ("专业领域", "Fields"),
    "mtg_confirmed": ("已确认参加", "confirmed"), "mtg_waiting": ("待确认", "not yet confirmed"),
    "mtg_conclusion": ("会商结论", "Conclusions"), "mtg_no_conclusion": ("尚未登记会商结论", "No conclusions recorded yet"),
    # the activation page's dispatch from the register
    "act_register_teams": ("应急资源库队伍(按预案所需类别建议,可调用的在前)", "Register teams (the plan's kinds, available first)"),
    "act_register_strength": ("可调用力量", "Available strength"),
    # 物资调拨 on the activation page
    "sup_title": ("物资调拨", "Supplies"), "sup_seq": ("序号", "No."), "sup_requested": ("申请数量", "Asked"),
    "sup_approved": ("批准数量", "Approved"), "sup_received": ("签收数量", "Received"),
    "sup_short": ("库存缺口", "short by"),
    "sst_requested": ("待审批", "to approve"), "sst_approved": ("已批准待出库", "approved"),
    "sst_refused": ("未批准", "refused"), "sst_picked_up": ("已出库待签收", "picked up"),
    "sst_received": ("已签收", "received"),
    # kinds of team and equipment, experts' fields (definitions/schema/resources.py)
    "rk_fire_rescue": ("综合性消防救援", "fire rescue"), "rk_flood": ("防汛抢险", "flood"),
    "rk_forest_fire": ("森林消防", "forest fire"), "rk_geological": ("地质灾害应急", "geological hazard"),
    "rk_hazmat": ("危化品处置", "hazardous chemicals"), "rk_medical": ("医疗救护", "medical"),
    "rk_militia": ("民兵应急", "militia"), "rk_police": ("公安", "police"), "rk_power": ("电力抢修", "power"),
    "rk_traffic": ("交通保障", "traffic"), "rk_social": ("社会救援力量", "volunteer rescue"),
    "ek_pump": ("排涝泵", "pump"), "ek_boat": ("舟艇", "boat"), "ek_generator": ("发电机", "generator"),
    "ek_vehicle": ("车辆", "vehicle"), "ek_lighting": ("照明", "lighting"), "ek_excavator": ("工程机械", "excavator"),
    "ek_communication": ("通信", "communication"), "ek_drone": ("无人机", "drone"),
    "ek_fire_fighting": ("灭火装备", "fire fighting"), "ek_other": ("其他", "other"),
    "xf_flood": ("防汛抗旱", "flood"), "xf_geology": ("地质灾害", "geology"), "xf_forest_fire": ("森林防灭火", "forest fire"),
    "xf_hazmat": ("危险化学品", "hazardous chemicals"), "xf_work_safety": ("安全生产", "work safety"),
    "xf_medical": ("医疗卫生", "medical"), "xf_structure": ("建筑结构", "structures"),
    "xf_meteorology": ("气象", "meteorology"), "xf_other": ("其他", "other"),
}

STRINGS.update({k: v for k, v in RESOURCE_STRINGS.items() if k not in STRINGS})  # a key twice: the strings test says
